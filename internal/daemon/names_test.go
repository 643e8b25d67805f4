package daemon

import (
	"context"
	"strings"
	"testing"

	"github.com/banger-dev/banger/internal/api"
	"github.com/banger-dev/banger/internal/config"
)

// Destructive commands take exact names: a unique prefix that other
// commands accept is refused with a suggestion, and nothing is deleted.
func TestDeleteTakesExactNamesOnly(t *testing.T) {
	h := newHarness(t)
	vm := h.create("dev")
	err := h.call(api.MethodVMDelete, api.NameParams{Name: "de"}, nil)
	if !isCode(err, api.CodeNotFound) || !strings.Contains(err.Error(), `no VM named "de"; did you mean dev?`) {
		t.Fatalf("vm delete de: %v", err)
	}
	if err := h.call(api.MethodVMDelete, api.NameParams{Name: "dve"}, nil); err == nil || !strings.Contains(err.Error(), "did you mean dev?") {
		t.Fatalf("vm delete dve: %v", err)
	}
	if err := h.call(api.MethodVMDelete, api.NameParams{Name: "zzzzzz"}, nil); err == nil || !strings.Contains(err.Error(), "`banger vm ls` lists VMs") {
		t.Fatalf("vm delete zzzzzz: %v", err)
	}
	var got api.VM
	must(t, h.call(api.MethodVMShow, api.NameParams{Name: "de"}, &got)) // non-destructive: prefix still works
	if err := h.call(api.MethodVMShow, api.NameParams{Name: "dve"}, nil); !isCode(err, api.CodeNotFound) || !strings.Contains(err.Error(), `no VM named "dve"; did you mean dev?`) {
		t.Fatalf("vm show dve: %v", err) // a typo gets the same suggestion everywhere
	}
	if got.ID != vm.ID || got.State != "running" {
		t.Fatalf("dev after refused deletes: %+v", got)
	}
	err = h.call(api.MethodImageDelete, api.NameParams{Name: "debian"}, nil)
	if !isCode(err, api.CodeNotFound) || !strings.Contains(err.Error(), `no image named "debian"; did you mean `+config.DefaultImageName+"?") {
		t.Fatalf("image delete prefix: %v", err)
	}
	err = h.call(api.MethodKernelDelete, api.NameParams{Name: "debian"}, nil)
	if !isCode(err, api.CodeNotFound) || !strings.Contains(err.Error(), `no kernel named "debian"; did you mean `+config.DefaultKernelName+"?") {
		t.Fatalf("kernel delete prefix: %v", err)
	}
	must(t, h.call(api.MethodVMDelete, api.NameParams{Name: vm.ID}, nil)) // the id is exact too
	h.assertNoTrace(vm.ID)
}

// The spec line is printed only once the image is known to exist, and
// still before anything is reserved.
func TestSpecLineOnlyForAnExistingImage(t *testing.T) {
	h := newHarness(t)
	var stages []string
	record := func(p api.Progress) { stages = append(stages, p.Stage) }
	err := h.client.Call(context.Background(), api.MethodVMCreate, api.CreateParams{Name: "typo", Image: "debian-bookwrom"}, nil, record)
	if err == nil || !strings.Contains(err.Error(), "debian-bookwrom") {
		t.Fatalf("create with a mistyped image: %v", err)
	}
	for _, s := range stages {
		if s == api.StageSpec {
			t.Fatalf("a spec line for an image that does not exist: stages %v", stages)
		}
	}
	stages = nil
	if err := h.client.Call(context.Background(), api.MethodVMCreate, api.CreateParams{Name: "ok", WaitSSH: true}, nil, record); err != nil {
		t.Fatal(err)
	}
	spec, reserve := -1, -1
	for i, s := range stages {
		switch s {
		case api.StageSpec:
			spec = i
		case stageReserved:
			reserve = i
		}
	}
	if spec < 0 || reserve < 0 || spec > reserve {
		t.Fatalf("stages %v: want spec before reserve", stages)
	}
}
