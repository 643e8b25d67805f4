package cli

import (
	"fmt"
	"os"
	"path/filepath"

	"github.com/banger-dev/banger/internal/sshconfig"
	"github.com/spf13/cobra"
)

// userSSHConfig is ~/.ssh/config, with $HOME as banger's other paths.
func userSSHConfig() (string, error) {
	home, err := os.UserHomeDir()
	if err != nil {
		return "", err
	}
	return filepath.Join(home, ".ssh", "config"), nil
}

// sshConfigOptions are `ssh-config`'s flags and what it needs.
type sshConfigOptions struct {
	IO *iostreams
	// ConfigDir holds banger's ssh_config (the Include's target).
	ConfigDir string
	// UserConfig is the file the Include goes into (~/.ssh/config).
	UserConfig func() (string, error)

	Install, Uninstall bool
}

// newSSHConfigCmd builds `ssh-config`; runF, when set, runs instead of
// sshConfigRun.
func newSSHConfigCmd(f *factory, runF func(*sshConfigOptions) error) *cobra.Command {
	opts := &sshConfigOptions{IO: f.IO, ConfigDir: f.Paths.ConfigDir, UserConfig: userSSHConfig}
	cmd := &cobra.Command{
		Use:   "ssh-config [--install | --uninstall]",
		Short: "Make plain `ssh NAME.vm` work: show, add or remove the Include of banger's ssh_config",
		Long: `bangerd keeps its own ssh_config up to date: one Host block per VM naming
its address, banger's key and banger's known_hosts (host keys are pinned
before the first connection; ssh accepts a new VM's key once and refuses a
changed one). With --install, banger adds one marker-fenced Include line at
the top of ~/.ssh/config; --uninstall removes exactly that region. Nothing
else in the file changes, and the daemon never edits it on its own.`,
		Example: "  banger ssh-config --install && ssh dev.vm",
		Args:    exactArgs(0, "no arguments"),
		RunE: func(cmd *cobra.Command, args []string) error {
			if f.Client != nil && f.Client.Remote != nil {
				return fmt.Errorf("ssh-config: the Include is for this machine's VMs; VMs on %s are reached with `banger vm ssh NAME` (through that host)", f.Client.Remote.URL)
			}
			if opts.Install && opts.Uninstall {
				return usageError{fmt.Errorf("ssh-config: --install and --uninstall exclude each other")}
			}
			if runF != nil {
				return runF(opts)
			}
			return sshConfigRun(opts)
		},
	}
	cmd.Flags().BoolVar(&opts.Install, "install", false, "add the Include to ~/.ssh/config (idempotent)")
	cmd.Flags().BoolVar(&opts.Uninstall, "uninstall", false, "remove banger's Include from ~/.ssh/config")
	return cmd
}

// sshConfigRun shows, adds or removes the Include of banger's ssh_config.
func sshConfigRun(opts *sshConfigOptions) error {
	user, err := opts.UserConfig()
	if err != nil {
		return err
	}
	target := sshconfig.BangerConfigPath(opts.ConfigDir)
	switch {
	case opts.Install:
		changed, err := sshconfig.Install(user, target)
		if err != nil {
			return err
		}
		if changed {
			fmt.Fprintf(opts.IO.Out, "added the Include of %s to %s\n", target, user)
		} else {
			fmt.Fprintf(opts.IO.Out, "%s already includes %s\n", user, target)
		}
		return nil
	case opts.Uninstall:
		changed, err := sshconfig.Uninstall(user)
		if err != nil {
			return err
		}
		if changed {
			fmt.Fprintf(opts.IO.Out, "removed banger's Include from %s\n", user)
		} else {
			fmt.Fprintf(opts.IO.Out, "%s has no banger Include\n", user)
		}
		return nil
	}
	ok, err := sshconfig.Installed(user)
	state := "not included: run `banger ssh-config --install`"
	switch {
	case err != nil:
		state = err.Error()
	case ok:
		state = "included (remove with `banger ssh-config --uninstall`)"
	}
	fmt.Fprintf(opts.IO.Out, "ssh_config:   %s\ninclude line: Include %s\n%s: %s\n", target, target, user, state)
	return nil
}
