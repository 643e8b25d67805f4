package hostnet

import (
	"context"
	"net/netip"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/vishvananda/netlink"
)

func TestSudoHelper(t *testing.T) {
	enterNetns(t)
	setForward(t, "0") // assertNothingLeft expects it off again
	ctx := context.Background()
	dir := t.TempDir()
	sudo := filepath.Join(dir, "sudo")
	// The stand-in checks -n, sets what sudo sets, and runs the helper.
	os.WriteFile(sudo, []byte("#!/bin/sh\n[ \"$1\" = -n ] || exit 9\nshift\nSUDO_UID=4242 SUDO_GID=4343 HOSTNET_PRIV_HELPER=1 exec \"$@\"\n"), 0o755)
	n := newTestNet(t, "10.77.0.0/24")
	n.UseSudo(sudo, os.Args[0])
	must(t, n.EnsureBridge(ctx))
	waitPool(n)
	must(t, n.CreateTAP(ctx, "bgtvm1"))
	tap, ok := link(t, "bgtvm1").(*netlink.Tuntap)
	if !ok || tap.Owner != 4242 || tap.Group != 4343 {
		t.Fatalf("TAP through the helper: %#v, want owner 4242 group 4343", link(t, "bgtvm1"))
	}
	st, err := n.Show(ctx)
	if err != nil || len(st.Objects) < 5 {
		t.Fatalf("Show through the helper: %v %v", st, err)
	}
	must(t, n.Teardown(ctx))
	assertNothingLeft(t)

	// sudo refusing (no sudoers entry) is a clear error and changes nothing.
	os.WriteFile(sudo, []byte("#!/bin/sh\necho 'sudo: a password is required' >&2\nexit 1\n"), 0o755)
	n = newTestNet(t, "10.77.0.0/24")
	n.UseSudo(sudo, "/usr/local/bin/bangerd")
	err = n.EnsureBridge(ctx)
	if err == nil || !strings.Contains(err.Error(), "a password is required") || !strings.Contains(err.Error(), "banger doctor --sudoers") {
		t.Fatalf("refused sudo: %v", err)
	}
	assertNothingLeft(t)
}

func TestPrivMainRefuses(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Fatal("needs root")
	}
	good := Config{Bridge: "banger0", Subnet: netip.MustParsePrefix("10.77.0.0/24")}
	for _, c := range []struct {
		argOp string
		req   request
		want  string
	}{
		{"show", request{Op: "teardown", Config: good}, "not allowed"},
		{"format-disk", request{Op: "format-disk", Config: good}, "not allowed"},
		{"tap-del", request{Op: "tap-del", Config: good, Name: "eth0"}, "not a banger TAP name"},
		{"tap-take", request{Op: "tap-take", Config: good, Name: "bgp0", To: "lo"}, "not a banger TAP name"},
		{"ensure", request{Op: "ensure", Config: Config{Bridge: "bad name!", Subnet: good.Subnet}}, "not a valid interface name"},
		{"ensure", request{Op: "ensure", Config: Config{Bridge: "banger0", Subnet: netip.MustParsePrefix("10.0.0.0/8")}}, "between /16 and /29"},
	} {
		in, _ := jsonMarshal(c.req)
		var out strings.Builder
		err := PrivMain(c.argOp, strings.NewReader(in), &out)
		msg := out.String()
		if err != nil {
			msg = err.Error()
		}
		if !strings.Contains(msg, c.want) {
			t.Errorf("PrivMain(%s, %+v) = %q, want %q", c.argOp, c.req, msg, c.want)
		}
	}
}

func TestSudoersSnippet(t *testing.T) {
	s := Sudoers("alice", "/opt/my banger/bin/bangerd")
	for _, op := range PrivOps {
		if !strings.Contains(s, `/opt/my\ banger/bin/bangerd priv `+op) {
			t.Errorf("snippet lacks %s:\n%s", op, s)
		}
	}
	if !strings.Contains(s, "alice ALL=(root) NOPASSWD: BANGER_NET") {
		t.Errorf("snippet:\n%s", s)
	}
}
