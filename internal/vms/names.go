package vms

import (
	"context"
	"errors"

	"github.com/banger-dev/banger/internal/api"
	"github.com/banger-dev/banger/internal/store"
	"github.com/banger-dev/banger/internal/suggest"
)

// exactVM resolves the name a destructive command was given: the exact
// name or id only, never a prefix, so `vm delete de` cannot delete dev.
// A miss suggests the names it might have meant.
func (s *Service) exactVM(ctx context.Context, name string) (store.VM, error) {
	if name == "" {
		return store.VM{}, api.Invalidf("a VM name is required")
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
	return vm, api.NotFoundf("no VM named %q%s", name, suggest.Hint(name, names, "`banger vm ls` lists VMs"))
}
