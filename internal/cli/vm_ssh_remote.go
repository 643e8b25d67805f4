package cli

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"

	"github.com/banger-dev/banger/internal/api"
)

// remoteSSHArgv is vm ssh's argv when the daemon is on another machine:
// the guest's address is on that machine's bridge, so OpenSSH hops
// through it (a ProxyCommand running `ssh -W` there, what ProxyJump
// does), and checks the guest's pinned host key and authenticates with
// banger's guest key from local copies the daemon sent, kept per host.
func remoteSSHArgv(ctx context.Context, f *factory, sshBin, name string, remote []string, progress func(api.Progress)) (api.SSHInfo, []string, error) {
	ri, err := f.Client.VMSSHRemote(ctx, api.SSHParams{Name: name, Wait: true}, progress)
	if err != nil {
		return api.SSHInfo{}, nil, err
	}
	info := ri.SSHInfo
	if err := validateSSHRemote(ri); err != nil {
		return info, nil, err
	}
	dir := remoteSSHDir(f.Paths.StateDir, f.Client.Remote.User, f.Client.Remote.Host, f.Client.Remote.Port)
	info.IdentityFile, info.KnownHostsFile = filepath.Join(dir, "id_ed25519"), filepath.Join(dir, "known_hosts")
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return info, nil, err
	}
	if err := replaceFileAtomic(info.IdentityFile, []byte(ri.IdentityKey), 0o600); err != nil {
		return info, nil, err
	}
	if err := replaceFileAtomic(info.KnownHostsFile, []byte(ri.KnownHosts+"\n"), 0o600); err != nil {
		return info, nil, err
	}
	argv, err := sshArgv(info, !f.IO.isStdinTTY(), remote)
	if err != nil {
		return info, nil, err
	}
	proxy := "ProxyCommand=" + f.Client.Remote.ProxyCommand(sshBin, f.Client.ControlDir())
	at := slices.Index(argv, "--")
	return info, slices.Insert(argv, at, "-o", proxy), nil
}

// remoteSSHDir holds the key and known_hosts copies for one remote host.
func remoteSSHDir(stateDir, user, host, port string) string {
	n := host
	if user != "" {
		n = user + "@" + n
	}
	if port != "" {
		n += "_" + port
	}
	return filepath.Join(stateDir, "remote", strings.ReplaceAll(n, ":", "_"))
}

// validateSSHRemote checks what the daemon sent before any of it is
// written or reaches ssh: the SSHInfo as locally, one known_hosts line
// for the guest's alias, an OpenSSH private key.
func validateSSHRemote(ri api.SSHRemoteInfo) error {
	if err := validateSSHInfo(ri.SSHInfo); err != nil {
		return err
	}
	if f := strings.Fields(ri.KnownHosts); len(f) != 3 || f[0] != ri.HostKeyAlias || strings.ContainsAny(ri.KnownHosts, "\n\r") {
		return fmt.Errorf("refusing to run ssh: the daemon sent a bad known_hosts line %q", ri.KnownHosts)
	}
	if !strings.HasPrefix(ri.IdentityKey, "-----BEGIN OPENSSH PRIVATE KEY-----") {
		return fmt.Errorf("refusing to run ssh: the daemon sent no OpenSSH private key")
	}
	return nil
}
