package vms

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"path"
	"strings"
	"time"

	"github.com/banger-dev/banger/internal/agent/client"
	"github.com/banger-dev/banger/internal/agent/proto"
	"github.com/banger-dev/banger/internal/api"
	"github.com/banger-dev/banger/internal/store"
)

// CopyIn relays a client's archive into the guest (vm cp SRC
// NAME:DST). The agent's copy_in is opened first, so a refused target (a
// missing parent, a directory onto a file) is the call's error; then the
// session is a byte pipe: the client's archive and trailer to the
// agent, the agent's result line back. The daemon reads nothing of it
// and never opens the client's files.
func (s *Service) CopyIn(ctx context.Context, p api.CopyInParams) (*Session, error) {
	vm, err := s.copyVM(ctx, p.Name, p.Path)
	if err != nil {
		return nil, err
	}
	return s.relayAgent(ctx, vm, proto.OpCopyIn, proto.CopyInParams{Into: s.GuestFS(p.Path), Base: p.Base})
}

// CopyOut relays the agent's archive of a guest path to the
// client (vm cp NAME:SRC DST), which extracts it: a missing path is the
// call's error.
func (s *Service) CopyOut(ctx context.Context, p api.CopyOutParams) (*Session, error) {
	vm, err := s.copyVM(ctx, p.Name, p.Path)
	if err != nil {
		return nil, err
	}
	return s.relayAgent(ctx, vm, proto.OpCopyOut, proto.CopyOutParams{Path: s.GuestFS(p.Path)})
}

// copyVM checks a copy's guest path and finds its running VM.
func (s *Service) copyVM(ctx context.Context, name, guestPath string) (store.VM, error) {
	if !path.IsAbs(guestPath) {
		return store.VM{}, api.Invalidf("guest path %q must be absolute", guestPath)
	}
	vm, err := s.Resolve(ctx, name)
	if err != nil {
		return vm, err
	}
	if s.instance(vm.ID) == nil {
		return vm, NotRunning(vm)
	}
	if vm.State == store.StatePaused {
		return vm, isPaused(vm)
	}
	return vm, nil
}

// relayAgent opens an agent stream op and, once the agent accepted it,
// returns a session that copies bytes both ways until either side ends.
// No VM lock is held: vm stop and delete end the copy.
func (s *Service) relayAgent(ctx context.Context, vm store.VM, op string, params any) (*Session, error) {
	in := s.instance(vm.ID)
	if in == nil {
		return nil, NotRunning(vm)
	}
	octx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	ac, err := in.agentClient(octx)
	if err != nil {
		return nil, err
	}
	st, _, err := ac.Open(octx, op, params)
	if err != nil {
		var re *client.RequestError
		if errors.As(err, &re) {
			return nil, agentRefusal(vm, re)
		}
		return nil, fmt.Errorf("vm %s: %w", vm.Name, err)
	}
	return &Session{
		result: s.View(vm),
		abort:  func() { st.Close() },
		run:    func(c Client) { go relayBytes(c.Conn, c.R, st) },
	}, nil
}

// agentRefusal is the call's error for an op the agent refused. An
// agent from before vm cp (a VM booted by an earlier banger) does not
// know copy_out, and reads copy_in's Into as an empty Dir: restarting the
// VM gives it the current agent.
func agentRefusal(vm store.VM, re *client.RequestError) error {
	if strings.HasPrefix(re.Message, "unknown op") || strings.Contains(re.Message, `target "" must be`) {
		return api.Conflictf("the agent in vm %s predates vm cp: restart the VM to update it (`banger vm restart %s`)", vm.Name, vm.Name)
	}
	return api.Invalidf("%s", re.Message)
}

// relayBytes pipes client (conn, whose buffered reader is br) and agent
// stream st. The client's end of input half-closes the agent stream (the
// agent still answers); the agent's end closes everything.
func relayBytes(conn io.WriteCloser, br io.Reader, st net.Conn) {
	defer conn.Close()
	defer st.Close()
	go func() {
		io.Copy(st, br)
		st.Close() // yamux: a half-close, the reply can still arrive
	}()
	io.Copy(conn, st)
}
