package cli

import (
	"reflect"
	"testing"

	"github.com/banger-dev/banger/internal/api"
)

func TestVMCreateNetFlags(t *testing.T) {
	got, err := parseOnly(t, newVMCreateCmd, "--name", "dev", "--net", "isolated", "--allow-out", "pypi.org",
		"--allow-out", "10.1.2.0/24:5432", "--deny-out", "203.0.113.0/24", "--group", "web", "-p", "8080:80", "-p", "0.0.0.0:5353:53/udp", "--auto-forward")
	if err != nil || got == nil {
		t.Fatalf("err %v, opts %v", err, got)
	}
	wantNet := &api.NetPolicy{Mode: "isolated", AllowOut: []string{"pypi.org", "10.1.2.0/24:5432"}, DenyOut: []string{"203.0.113.0/24"}, Group: "web"}
	on := true
	wantPorts := &api.CreatePorts{Forwards: []string{"8080:80", "0.0.0.0:5353:53/udp"}, AutoForward: &on}
	if !reflect.DeepEqual(got.Params.Net, wantNet) || !reflect.DeepEqual(got.Params.Ports, wantPorts) {
		t.Errorf("net %+v ports %+v, want %+v %+v", got.Params.Net, got.Params.Ports, wantNet, wantPorts)
	}
	if got, err := parseOnly(t, newVMCreateCmd, "--name", "dev"); err != nil || got.Params.Net != nil || got.Params.Ports != nil {
		t.Errorf("no network flags: net %+v ports %+v err %v, want nil (the daemon's defaults)", got.Params.Net, got.Params.Ports, err)
	}
	for _, bad := range [][]string{{"--net", "open"}, {"--allow-out", "not a host"}, {"--group", "a b"}, {"-p", "80"}, {"-p", "8080:80/sctp"}} {
		got, err := parseOnly(t, newVMCreateCmd, bad...)
		wantUsage(t, bad, got, err)
	}
}

func TestVMSetNetFlags(t *testing.T) {
	got, err := parseOnly(t, newVMSetCmd, "dev", "--net", "nat", "--allow-out", "")
	if err != nil || got == nil || got.Net == nil {
		t.Fatalf("err %v, opts %+v", err, got)
	}
	if *got.Net.Mode != "nat" || got.Net.AllowOut == nil || len(*got.Net.AllowOut) != 0 || got.Net.DenyOut != nil {
		t.Errorf("set params %+v: want mode nat, allow-out emptied, deny-out untouched", *got.Net)
	}
	got, err = parseOnly(t, newVMSetCmd, "dev", "--vcpu", "2")
	if err != nil || got.Net != nil || got.Params.VCPU != 2 {
		t.Errorf("size only: %+v %v", got, err)
	}
	for _, bad := range [][]string{{"dev"}, {"dev", "--net", "open"}, {"dev", "--deny-out", "x:y"}} {
		got, err := parseOnly(t, newVMSetCmd, bad...)
		wantUsage(t, bad, got, err)
	}
}

func TestVMForwardArgs(t *testing.T) {
	got, err := parseOnly(t, newVMForwardCmd, "dev", "8080:80", "127.0.0.2:9000:9000/udp")
	if err != nil || got == nil || !reflect.DeepEqual(got.Params, api.ForwardParams{Name: "dev", Forwards: []string{"8080:80", "127.0.0.2:9000:9000/udp"}}) || got.Auto != nil {
		t.Fatalf("forward: %+v %v", got, err)
	}
	got, err = parseOnly(t, newVMForwardCmd, "dev", "--auto=false")
	if err != nil || got == nil || got.Auto == nil || *got.Auto {
		t.Fatalf("--auto=false: %+v %v", got, err)
	}
	for _, bad := range [][]string{{}, {"dev"}, {"dev", "8080"}, {"dev", "x:80"}, {"dev", "8080:0"}} {
		got, err := parseOnly(t, newVMForwardCmd, bad...)
		wantUsage(t, bad, got, err)
	}
	rm, err := parseOnly(t, newVMForwardRmCmd, "dev", "8080/udp")
	if err != nil || rm == nil || rm.Params != (api.ForwardRemoveParams{Name: "dev", HostPort: 8080, Proto: "udp"}) {
		t.Fatalf("rm: %+v %v", rm, err)
	}
	for _, bad := range [][]string{{"dev"}, {"dev", "http"}, {"dev", "80/sctp"}} {
		got, err := parseOnly(t, newVMForwardRmCmd, bad...)
		wantUsage(t, bad, got, err)
	}
}
