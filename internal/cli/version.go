package cli

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"text/tabwriter"

	"github.com/banger-dev/banger/internal/api"
	"github.com/banger-dev/banger/internal/buildinfo"
	"github.com/banger-dev/banger/internal/client"
	"github.com/spf13/cobra"
)

// versionReport is `banger version --json`.
type versionReport struct {
	CLI    buildinfo.Info `json:"cli"`
	Daemon daemonVersion  `json:"daemon"`
	Agent  agentVersion   `json:"agent"`
}

type daemonVersion struct {
	Running    bool   `json:"running"`
	Version    string `json:"version,omitempty"`
	APIVersion int    `json:"api_version,omitempty"`
	PID        int    `json:"pid,omitempty"`
	Error      string `json:"error,omitempty"`
}

type agentVersion struct {
	Version string `json:"version,omitempty"`
	Path    string `json:"path,omitempty"`
	From    string `json:"from"` // daemon | file | none
	Error   string `json:"error,omitempty"`
}

func newVersionCmd(f *factory) *cobra.Command {
	var asJSON bool
	cmd := &cobra.Command{
		Use:   "version",
		Short: "Print the versions of banger, bangerd and banger-agent",
		Long: `Print the version of this CLI, of the running daemon (a stopped daemon is
reported as not running, never started for this) and of the guest agent
that goes into VMs' initramfs: the one the daemon uses when it runs, else
the banger-agent binary it would use (agent_bin, else beside banger).
Builds made without ` + "`make build`" + ` show the Go toolchain's record instead
(dev-<commit>[-dirty]).`,
		Args: exactArgs(0, "no arguments"),
		RunE: func(cmd *cobra.Command, args []string) error {
			return printVersion(cmd.Context(), f, asJSON)
		},
	}
	cmd.Flags().BoolVar(&asJSON, "json", false, "print JSON")
	return cmd
}

func printVersion(ctx context.Context, f *factory, asJSON bool) error {
	r := versionReport{CLI: buildinfo.Current("")}
	st, err := f.Client.Status(ctx) // never starts the daemon
	switch {
	case err == nil:
		r.Daemon = daemonVersion{Running: true, Version: st.Version, APIVersion: st.APIVersion, PID: st.PID}
	case errors.Is(err, client.ErrNotRunning):
	default:
		r.Daemon = daemonVersion{Error: err.Error()}
	}
	r.Agent = findAgentVersion(ctx, f, st)
	if asJSON {
		return printJSON(f.IO.Out, r)
	}
	tw := tabwriter.NewWriter(f.IO.Out, 0, 4, 2, ' ', 0)
	fmt.Fprintf(tw, "banger\t%s\n", r.CLI)
	switch {
	case r.Daemon.Running:
		fmt.Fprintf(tw, "bangerd\t%s (running, pid %d, api %d)\n", r.Daemon.Version, r.Daemon.PID, r.Daemon.APIVersion)
	case r.Daemon.Error != "":
		fmt.Fprintf(tw, "bangerd\tunknown: %s\n", r.Daemon.Error)
	default:
		fmt.Fprintf(tw, "bangerd\tnot running\n")
	}
	switch {
	case r.Agent.From == "daemon":
		fmt.Fprintf(tw, "banger-agent\t%s (as the daemon reports)\n", r.Agent.Version)
	case r.Agent.Error != "":
		fmt.Fprintf(tw, "banger-agent\tunknown: %s\n", r.Agent.Error)
	default:
		fmt.Fprintf(tw, "banger-agent\t%s (%s)\n", r.Agent.Version, r.Agent.Path)
	}
	return tw.Flush()
}

// findAgentVersion is the daemon's word on its agent when it gave one,
// else the build information of the binary it would put in initramfs.
func findAgentVersion(ctx context.Context, f *factory, st api.Status) agentVersion {
	if st.AgentVersion != "" {
		return agentVersion{Version: st.AgentVersion, From: "daemon"}
	}
	if f.Client.Remote != nil {
		return agentVersion{From: "none", Error: "reported by the daemon on " + f.Client.Remote.URL + " once it runs"}
	}
	path, err := agentPath(f)
	if err != nil {
		return agentVersion{From: "none", Error: err.Error()}
	}
	v, err := buildinfo.AgentVersion(ctx, path)
	if err != nil {
		return agentVersion{From: "none", Path: path, Error: err.Error()}
	}
	return agentVersion{Version: v, Path: path, From: "file"}
}

// agentPath is where the daemon finds banger-agent: agent_bin in
// config.toml, else beside bangerd (which is beside banger or on PATH).
func agentPath(f *factory) (string, error) {
	if cfg, err := f.Config(); err == nil && cfg.AgentBin != "" {
		return cfg.AgentBin, nil
	}
	d, err := f.Client.DaemonPath()
	if err != nil {
		return "", err
	}
	p := filepath.Join(filepath.Dir(d), "banger-agent")
	if _, err := os.Stat(p); err != nil {
		return "", fmt.Errorf("banger-agent not found beside %s", d)
	}
	return p, nil
}
