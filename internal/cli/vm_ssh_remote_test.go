package cli

import (
	"strings"
	"testing"

	"github.com/banger-dev/banger/internal/api"
)

func TestValidateSSHRemote(t *testing.T) {
	good := api.SSHRemoteInfo{
		SSHInfo: api.SSHInfo{User: "root", Host: "10.77.0.5", HostKeyAlias: "dev.vm",
			IdentityFile: "/state/ssh/id_ed25519", KnownHostsFile: "/state/ssh/known_hosts"},
		KnownHosts:  "dev.vm ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIOMqqnkVzrm0SdG6UOoqKLsabgH5C9okWi0dh2l9GKJl",
		IdentityKey: "-----BEGIN OPENSSH PRIVATE KEY-----\nb3Blbn...\n-----END OPENSSH PRIVATE KEY-----\n",
	}
	if err := validateSSHRemote(good); err != nil {
		t.Fatal(err)
	}
	bad := map[string]func(*api.SSHRemoteInfo){
		"an option as host":       func(r *api.SSHRemoteInfo) { r.Host = "-oProxyCommand=x" },
		"another alias's pin":     func(r *api.SSHRemoteInfo) { r.KnownHosts = strings.Replace(r.KnownHosts, "dev.vm", "other.vm", 1) },
		"two lines":               func(r *api.SSHRemoteInfo) { r.KnownHosts = "dev.vm ssh-ed25519\n*" },
		"a wildcard pin":          func(r *api.SSHRemoteInfo) { r.KnownHosts = "* ssh-ed25519 AAAA" },
		"no key":                  func(r *api.SSHRemoteInfo) { r.IdentityKey = "" },
		"something else as a key": func(r *api.SSHRemoteInfo) { r.IdentityKey = "ssh-ed25519 AAAA" },
	}
	for name, mod := range bad {
		r := good
		mod(&r)
		if err := validateSSHRemote(r); err == nil || !strings.Contains(err.Error(), "refusing to run ssh") {
			t.Errorf("%s: %v", name, err)
		}
	}
}
