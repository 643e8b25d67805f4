package daemon

import (
	"bytes"
	"os"

	"github.com/banger-dev/banger/internal/sshconfig"
	"github.com/banger-dev/banger/internal/store"
)

// writeSSHConfig keeps ~/.config/banger/ssh_config in step with the VMs:
// one Host block per VM naming its address, so `ssh <name>.vm` works
// through the user's Include even where nothing routes `.vm` names to
// banger's DNS. The daemon never touches ~/.ssh/config itself.
func (s *netState) writeSSHConfig(d *Daemon, vms []store.VM) {
	s.sshMu.Lock()
	defer s.sshMu.Unlock()
	var hosts []sshconfig.Host
	for _, vm := range vms {
		if vm.IP != "" {
			hosts = append(hosts, sshconfig.Host{Name: vm.Name, Addr: vm.IP})
		}
	}
	path := sshconfig.BangerConfigPath(d.paths.ConfigDir)
	body := sshconfig.Render(hosts, d.keys.IdentityFile(), d.keys.KnownHostsFile())
	if old, err := os.ReadFile(path); err == nil && bytes.Equal(old, body) {
		return
	}
	if err := sshconfig.WriteFile(path, body); err != nil {
		d.log.Warn("write ssh_config", "path", path, "err", err)
	}
}
