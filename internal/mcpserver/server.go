// Package mcpserver is `banger mcp`: the Model Context Protocol over
// stdio, so an agent host (Claude Code, Cursor, …) can create sandboxes,
// run commands in them, read, write and list their files and take a
// workspace's changes back as a patch. It is a client-side adapter over
// the daemon's typed client (internal/client), like the CLI's commands:
// the same daemon methods, nothing implemented twice. It uses the
// official Go SDK (github.com/modelcontextprotocol/go-sdk).
package mcpserver

import (
	"context"
	"fmt"
	"io"
	"log/slog"

	"github.com/modelcontextprotocol/go-sdk/mcp"

	"github.com/banger-dev/banger/internal/api"
)

// Daemon is what the tools need of the daemon: a subset of
// *client.Client's methods, with streams as plain io.ReadWriteClosers so
// a test can hand in a fake (Client adapts the real one).
type Daemon interface {
	VMCreate(ctx context.Context, p api.CreateParams, onProgress func(api.Progress)) (api.VM, error)
	VMList(ctx context.Context) ([]api.VM, error)
	VMDelete(ctx context.Context, name string, onProgress func(api.Progress)) (api.VM, error)
	// VMExec opens an exec stream (agent/proto frames).
	VMExec(ctx context.Context, p api.ExecParams) (io.ReadWriteCloser, error)
	// VMCopyIn opens a copy into the guest: a tar archive and the copy
	// trailer go in, the agent's result line comes back.
	VMCopyIn(ctx context.Context, p api.CopyInParams) (io.ReadWriteCloser, error)
	// VMCopyOut opens a copy out of the guest: a tar archive and the
	// agent's trailer come back.
	VMCopyOut(ctx context.Context, p api.CopyOutParams) (io.ReadWriteCloser, error)
	WorkspacePrepare(ctx context.Context, p api.WorkspacePrepareParams, archive io.Reader, onProgress func(api.Progress)) (api.Workspace, error)
	// WorkspaceExport opens an exec stream whose stdout is the patch.
	WorkspaceExport(ctx context.Context, p api.WorkspaceExportParams) (io.ReadWriteCloser, error)
}

// Options configure a server.
type Options struct {
	// Version is banger's, reported to the client at initialisation.
	Version string
	// Log receives one line per failed tool call; nil discards. It must
	// not write to stdout, which carries the protocol.
	Log *slog.Logger
	// Dir resolves relative host paths (a repository to import, a patch
	// to write); "" is the process's working directory.
	Dir string
}

// New is the MCP server with banger's tools, calling d.
func New(d Daemon, o Options) *mcp.Server {
	if o.Log == nil {
		o.Log = slog.New(slog.DiscardHandler)
	}
	s := mcp.NewServer(&mcp.Implementation{Name: "banger", Title: "banger microVM sandboxes", Version: o.Version},
		&mcp.ServerOptions{Instructions: instructions})
	t := &tools{d: d, log: o.Log, dir: o.Dir}
	t.addVMTools(s)
	t.addExecTools(s)
	t.addFileTools(s)
	t.addWorkspaceTools(s)
	return s
}

// Serve runs the server on in and out (stdin and stdout: newline-
// delimited JSON-RPC) until the client closes in or ctx ends.
func Serve(ctx context.Context, d Daemon, o Options, in io.Reader, out io.Writer) error {
	return New(d, o).Run(ctx, &mcp.IOTransport{Reader: io.NopCloser(in), Writer: nopWriteCloser{out}})
}

type nopWriteCloser struct{ io.Writer }

func (nopWriteCloser) Close() error { return nil }

const instructions = `banger runs Linux sandboxes as real microVMs on this machine.
Create one with create_sandbox (optionally importing a local git repository
as a workspace), run commands in it with run_command, move files with
write_file, read_file and list_directory, take the guest's changes to the
workspace back as a patch with export_workspace, and delete it with
delete_sandbox when done. Sandboxes stay until deleted; list_sandboxes shows
them. Paths in a sandbox are absolute or relative to /root.`

// tools holds what every tool handler needs.
type tools struct {
	d   Daemon
	log *slog.Logger
	dir string
}

// add registers a tool whose handler returns its typed result or an
// error. The SDK validates the input against the schema it infers from
// In, and turns an error into a tool error carrying its message (the
// daemon's, for its errors); the failure is logged on stderr too.
func add[In, Out any](s *mcp.Server, log *slog.Logger, tool *mcp.Tool, h func(context.Context, *mcp.CallToolRequest, In) (Out, error)) {
	mcp.AddTool(s, tool, func(ctx context.Context, req *mcp.CallToolRequest, in In) (*mcp.CallToolResult, Out, error) {
		out, err := h(ctx, req, in)
		if err != nil {
			log.Warn("tool failed", "tool", tool.Name, "err", err)
		}
		return nil, out, err
	})
}

// reporter turns the daemon's progress events into MCP progress
// notifications when the caller asked for them (a progress token).
func reporter(ctx context.Context, req *mcp.CallToolRequest) func(api.Progress) {
	if req == nil || req.Session == nil || req.Params == nil {
		return nil
	}
	token := req.Params.GetProgressToken()
	if token == nil {
		return nil
	}
	n := 0.0
	return func(p api.Progress) {
		n++
		msg := p.Stage
		if p.Message != "" {
			msg += ": " + p.Message
		}
		if p.Total > 0 && p.Unit != "" {
			msg += fmt.Sprintf(" (%d of %d %s)", p.Done, p.Total, p.Unit)
		}
		// A notification that cannot be sent is no reason to fail the
		// operation.
		_ = req.Session.NotifyProgress(ctx, &mcp.ProgressNotificationParams{ProgressToken: token, Progress: n, Message: msg})
	}
}
