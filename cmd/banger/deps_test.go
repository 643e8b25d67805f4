package main

import (
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"testing"
)

// The CLI is a client: it links no store, host networking, VMM driver,
// kernel or image code, no daemon-side service (vms, artifacts,
// workspaces, network) or the socket adapter over them, and not the
// daemon. Host checks and the
// privileged network helper live in bangerd (`bangerd doctor`, `bangerd
// priv`).
func TestCLILinksNoDaemonSidePackages(t *testing.T) {
	gobin := filepath.Join(runtime.GOROOT(), "bin", "go")
	if runtime.GOROOT() == "" { // a -trimpath test binary does not know it
		gobin = "go"
	}
	out, err := exec.Command(gobin, "list", "-deps", ".").CombinedOutput()
	if err != nil {
		t.Fatalf("go list -deps: %v\n%s", err, out)
	}
	const mod = "github.com/banger-dev/banger/internal/"
	forbidden := []string{"store", "hostnet", "vmm", "kernel", "image", "daemon", "doctor",
		"vms", "vmdir", "artifacts", "workspaces", "network", "rpcapi"}
	var seen int
	for _, pkg := range strings.Fields(string(out)) {
		if pkg == mod+"cli" {
			seen++
		}
		for _, f := range forbidden {
			if pkg == mod+f || strings.HasPrefix(pkg, mod+f+"/") && pkg != mod+"doctor/report" {
				t.Errorf("cmd/banger links %s", pkg)
			}
		}
	}
	if seen != 1 {
		t.Fatalf("go list -deps does not list %scli; output:\n%s", mod, out)
	}
}
