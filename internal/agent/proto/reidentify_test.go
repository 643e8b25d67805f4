package proto

import (
	"strings"
	"testing"
)

func goodReidentify() ReidentifyParams {
	return ReidentifyParams{
		Hostname: "try-1", OldMAC: "52:54:00:00:00:01", MachineID: strings.Repeat("ab", 16),
		Net:         &GuestNet{MAC: "52:54:00:00:00:02", Address: "172.30.0.5/24", Gateway: "172.30.0.1", DNS: []string{"172.30.0.1"}},
		SSHHostKeys: map[string]string{"ssh_host_ed25519_key": "k", "ssh_host_ed25519_key.pub": "p"},
	}
}

func TestReidentifyCheck(t *testing.T) {
	if err := goodReidentify().Check(); err != nil {
		t.Fatalf("good params: %v", err)
	}
	for name, tc := range map[string]struct {
		edit func(*ReidentifyParams)
		want string
	}{
		"hostname":   {func(p *ReidentifyParams) { p.Hostname = "Bad_Name" }, "not a DNS label"},
		"machine-id": {func(p *ReidentifyParams) { p.MachineID = "XYZ" }, "machine-id"},
		"no net":     {func(p *ReidentifyParams) { p.Net = nil }, "no network"},
		"old mac":    {func(p *ReidentifyParams) { p.OldMAC = "zz" }, "old mac"},
		"mac":        {func(p *ReidentifyParams) { p.Net.MAC = "1:2" }, "mac"},
		"address":    {func(p *ReidentifyParams) { p.Net.Address = "172.30.0.5" }, "address"},
		"gateway":    {func(p *ReidentifyParams) { p.Net.Gateway = "gw" }, "gateway"},
		"no keys":    {func(p *ReidentifyParams) { p.SSHHostKeys = nil }, "no ssh host keys"},
		"key path":   {func(p *ReidentifyParams) { p.SSHHostKeys = map[string]string{"../x": ""} }, "not a host key"},
	} {
		p := goodReidentify()
		p.Net = &GuestNet{MAC: p.Net.MAC, Address: p.Net.Address, Gateway: p.Net.Gateway}
		tc.edit(&p)
		if err := p.Check(); err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%s: %v, want %q", name, err, tc.want)
		}
	}
}
