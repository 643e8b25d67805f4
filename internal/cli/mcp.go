package cli

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"

	"github.com/spf13/cobra"

	"github.com/banger-dev/banger/internal/buildinfo"
	"github.com/banger-dev/banger/internal/mcpserver"
)

// mcpOptions are `banger mcp`'s options and what it needs.
type mcpOptions struct {
	IO     *iostreams
	Daemon mcpserver.Daemon
}

// newMCPCmd builds `banger mcp`; runF, when set, runs instead of mcpRun.
func newMCPCmd(f *factory, runF func(*mcpOptions) error) *cobra.Command {
	opts := &mcpOptions{IO: f.IO, Daemon: mcpserver.Client(f.Client)}
	return &cobra.Command{
		Use:   "mcp",
		Short: "Serve banger's sandboxes to AI agents over the Model Context Protocol (stdio)",
		Long: `Serve the Model Context Protocol on stdin and stdout, for an agent host
(Claude Code, Cursor, Claude Desktop, …) that starts it as a subprocess. The
agent gets tools to create, list and delete sandboxes (banger VMs), run a
command in one, read, write and list its files, and take a workspace's
changes back as a patch:

  create_sandbox    boot a VM (image, name, vcpus, memory; optionally a
                    local git repository copied in as a workspace)
  list_sandboxes    every VM with its state
  delete_sandbox    stop and delete a VM
  run_command       argv or a shell line, cwd, env, user, stdin, timeout;
                    stdout, stderr and exit code, bounded
  read_file         a file's content (text, or base64)
  write_file        a whole file (text or base64, mode, create_parents)
  list_directory    a directory's entries
  export_workspace  the workspace's changes as a patch, returned or
                    written to a file

They call the same daemon as the CLI (started on demand): sandboxes made
through MCP are ordinary VMs that banger vm ls shows. Relative host paths
(repo, output_path) are from the directory banger mcp runs in. stdout
carries the protocol; logs go to stderr.

Claude Code, one line:

  claude mcp add banger -- banger mcp

Other hosts (Cursor's .cursor/mcp.json, Claude Desktop's
claude_desktop_config.json, …):

  {"mcpServers": {"banger": {"command": "banger", "args": ["mcp"]}}}

Use banger's absolute path when the host's PATH does not have it.`,
		Example: "  claude mcp add banger -- banger mcp\n" +
			"  claude mcp add banger -- /usr/local/bin/banger mcp",
		Args: exactArgs(0, "no arguments"),
		RunE: func(cmd *cobra.Command, args []string) error {
			if runF != nil {
				return runF(opts)
			}
			return mcpRun(cmd.Context(), opts)
		},
	}
}

// mcpRun serves MCP until the client closes stdin.
func mcpRun(ctx context.Context, opts *mcpOptions) error {
	dir, _ := os.Getwd()
	log := slog.New(slog.NewTextHandler(opts.IO.Err, nil))
	err := mcpserver.Serve(ctx, opts.Daemon, mcpserver.Options{Version: buildinfo.Current("").String(), Log: log, Dir: dir},
		opts.IO.In, opts.IO.Out)
	if err == nil || errors.Is(err, io.EOF) || errors.Is(err, context.Canceled) {
		return nil
	}
	return fmt.Errorf("mcp: %w", err)
}
