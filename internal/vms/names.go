package vms

import (
	"context"
	"errors"
	"strings"

	"github.com/banger-dev/banger/internal/store"
	"github.com/banger-dev/banger/internal/suggest"
)

// exactVM resolves the name a destructive command was given: the exact
// name or id only, never a prefix, so `vm delete de` cannot delete dev.
// A miss suggests the names it might have meant.
func (s *Service) exactVM(ctx context.Context, name string) (store.VM, error) {
	if name == "" {
		return store.VM{}, invalid("a VM name is required")
	}
	vm, err := s.Store.GetVM(ctx, name)
	if !errors.Is(err, store.ErrNotFound) {
		return vm, err
	}
	vms, err := s.Store.ListVMs(ctx)
	if err != nil {
		return vm, err
	}
	names := make([]string, len(vms))
	for i, v := range vms {
		names[i] = v.Name
	}
	return vm, notFound("no VM named %q%s", name, DidYouMean(name, names, "`banger vm ls` lists VMs"))
}

// DidYouMean is "; did you mean dev?" for the names typed is a prefix
// of, else the closest within an edit distance of 2, else ": <fallback>".
func DidYouMean(typed string, names []string, fallback string) string {
	near := suggest.Closest(typed, names, nil)
	if len(near) == 0 {
		return ": " + fallback
	}
	if len(near) > 5 {
		near = append(near[:5], "…")
	}
	return "; did you mean " + strings.Join(near, " or ") + "?"
}
