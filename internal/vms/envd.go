package vms

import (
	"context"
	"errors"

	"github.com/banger-dev/banger/internal/agent/client"
	"github.com/banger-dev/banger/internal/store"
)

// Guest is a running VM as E2B's in-sandbox API (internal/envd) uses
// it: its agent and the image's runtime config (user, environment).
type Guest struct {
	VM      store.VM
	Agent   *client.Client
	Runtime store.ImageRuntime
}

// Errors of RunningGuest.
var (
	ErrNoSuchVM    = errors.New("no such vm")
	ErrVMNotActive = errors.New("vm is not running")
)

// RunningGuest finds a VM by its exact name or id (a sandbox id is
// never a prefix) and returns its agent: ErrNoSuchVM, or ErrVMNotActive
// (wrapped with the state) when it is not running or is paused.
func (s *Service) RunningGuest(ctx context.Context, nameOrID string) (Guest, error) {
	vm, err := s.Store.GetVM(ctx, nameOrID)
	if errors.Is(err, store.ErrNotFound) {
		return Guest{}, ErrNoSuchVM
	}
	if err != nil {
		return Guest{}, err
	}
	if s.instance(vm.ID) == nil || vm.State == store.StatePaused {
		return Guest{}, stateError{vm.State}
	}
	ac, err := s.AgentClient(ctx, vm.ID)
	if err != nil {
		return Guest{}, err
	}
	g := Guest{VM: vm, Agent: ac}
	if im, err := s.Store.GetImage(ctx, vm.Image); err == nil {
		g.Runtime = im.Runtime
	}
	return g, nil
}

type stateError struct{ state string }

func (e stateError) Error() string { return "it is " + e.state }
func (e stateError) Unwrap() error { return ErrVMNotActive }
