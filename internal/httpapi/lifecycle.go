package httpapi

import (
	"context"
	"encoding/json"
	"net/http"
	"time"

	"github.com/banger-dev/banger/internal/api"
	"github.com/banger-dev/banger/internal/progress"
	"github.com/banger-dev/banger/internal/store"
)

// Forker forks a running sandbox count times (issue 14's fork); the
// children are new VMs.
type Forker interface {
	ForkSandbox(ctx context.Context, parent string, count int, r progress.Reporter) ([]api.VM, error)
}

// SandboxNetwork is E2B's network of a sandbox: Raw is the request's
// SandboxNetworkConfig as sent (allowOut, denyOut, …), for issue 16's
// policy to map; AllowInternetAccess false means denyOut 0.0.0.0/0.
type SandboxNetwork struct {
	Raw                 json.RawMessage
	AllowInternetAccess *bool
}

// NetworkPolicy sets a VM's network policy (issue 16).
type NetworkPolicy interface {
	SetSandboxNetwork(ctx context.Context, vm string, n SandboxNetwork) error
}

// setTimeout: the sandbox expires timeout seconds from now (E2B:
// "overwrites the TTL").
func (s *Server) setTimeout(w http.ResponseWriter, r *http.Request) {
	var p struct {
		Timeout *int `json:"timeout"`
	}
	if !decode(w, r, &p, false) {
		return
	}
	if p.Timeout == nil {
		writeError(w, http.StatusBadRequest, "timeout (seconds) is required")
		return
	}
	s.extend(w, r, p.Timeout, false)
}

// refresh keeps the sandbox alive at least duration seconds more.
func (s *Server) refresh(w http.ResponseWriter, r *http.Request) {
	var p struct {
		Duration *int `json:"duration"`
	}
	if !decode(w, r, &p, true) {
		return
	}
	if p.Duration != nil && (*p.Duration < 0 || *p.Duration > 3600) {
		writeError(w, http.StatusBadRequest, "duration: want 0..3600 seconds")
		return
	}
	s.extend(w, r, p.Duration, true)
}

// extend sets the deadline to now + sec (onlyLater: unless it is later
// already) and answers 204.
func (s *Server) extend(w http.ResponseWriter, r *http.Request, sec *int, onlyLater bool) {
	ttl, err := timeout(sec)
	if err != nil {
		fail(w, err)
		return
	}
	vm, rec, ok := s.find(w, r)
	if !ok {
		return
	}
	if sandboxState(vm.State) != stateRunning {
		writeError(w, http.StatusNotFound, "sandbox \""+vm.Name+"\" is not running ("+vm.State+"): connect to it first")
		return
	}
	if err := s.setDeadline(r.Context(), vm, rec, ttl, onlyLater); err != nil {
		fail(w, err)
		return
	}
	w.WriteHeader(http.StatusNoContent)
}

func (s *Server) setDeadline(ctx context.Context, vm api.VM, rec store.Sandbox, ttl time.Duration, onlyLater bool) error {
	rec, err := s.adopt(ctx, vm, rec)
	if err != nil {
		return err
	}
	dl := s.d.Now().Add(ttl)
	if onlyLater && rec.Deadline.After(dl) {
		return nil
	}
	return s.d.Records.SetSandboxDeadline(ctx, vm.ID, dl)
}

// pause saves the sandbox's whole state and stops its VMM (`vm stop
// --save`): a paused sandbox holds no memory or CPU, and survives a
// daemon or host restart; memory false stops it (`vm stop`), so
// resuming boots it from its disks. A paused sandbox has no deadline.
func (s *Server) pause(w http.ResponseWriter, r *http.Request) {
	var p struct {
		Memory *bool `json:"memory"`
	}
	vm, rec, ok := s.decodeFind(w, r, &p, true)
	if !ok {
		return
	}
	if vm.State != store.StateRunning && vm.State != store.StatePaused {
		writeError(w, http.StatusConflict, "sandbox \""+vm.Name+"\" is already paused ("+vm.State+")")
		return
	}
	ctx := context.WithoutCancel(r.Context())
	var err error
	if p.Memory != nil && !*p.Memory {
		_, err = s.d.VMs.Stop(ctx, vm.Name)
	} else {
		_, err = s.d.VMs.StopSave(ctx, vm.Name, nil)
	}
	if err == nil && rec.VMID != "" {
		err = s.d.Records.SetSandboxDeadline(ctx, vm.ID, time.Time{})
	}
	if err != nil {
		fail(w, err)
		return
	}
	w.WriteHeader(http.StatusNoContent)
}

// wake continues a paused sandbox: a paused VM resumes, a saved one
// restores, a stopped one boots.
func (s *Server) wake(ctx context.Context, vm api.VM) (api.VM, error) {
	if vm.State == store.StatePaused {
		return s.d.VMs.Resume(ctx, vm.Name, nil)
	}
	return s.d.VMs.StartWith(ctx, api.StartParams{Name: vm.Name}, nil)
}

// resume (deprecated in E2B, kept for older SDKs): a running sandbox is
// a conflict.
func (s *Server) resume(w http.ResponseWriter, r *http.Request) {
	var p struct {
		Timeout   *int  `json:"timeout"`
		AutoPause *bool `json:"autoPause"`
	}
	if !decode(w, r, &p, true) {
		return
	}
	s.continueSandbox(w, r, p.Timeout, p.AutoPause, false)
}

// connect answers a running sandbox (200) and resumes a paused one
// (201); its time to live is only extended.
func (s *Server) connect(w http.ResponseWriter, r *http.Request) {
	var p struct {
		Timeout *int `json:"timeout"`
	}
	if !decode(w, r, &p, true) {
		return
	}
	s.continueSandbox(w, r, p.Timeout, nil, true)
}

func (s *Server) continueSandbox(w http.ResponseWriter, r *http.Request, sec *int, autoPause *bool, connect bool) {
	ttl, err := timeout(sec)
	if err != nil {
		fail(w, err)
		return
	}
	vm, rec, ok := s.find(w, r)
	if !ok {
		return
	}
	ctx := context.WithoutCancel(r.Context())
	status := http.StatusCreated
	switch sandboxState(vm.State) {
	case stateRunning:
		if !connect {
			writeError(w, http.StatusConflict, "sandbox \""+vm.Name+"\" is already running")
			return
		}
		status = http.StatusOK
	case statePaused:
		if vm, err = s.wake(ctx, vm); err != nil {
			fail(w, err)
			return
		}
	default:
		writeError(w, http.StatusNotFound, "sandbox \""+vm.Name+"\" is "+vm.State+": it cannot be continued")
		return
	}
	if rec, err = s.adopt(ctx, vm, rec); err == nil && autoPause != nil && *autoPause != rec.AutoPause {
		rec.AutoPause = *autoPause
		err = s.d.Records.PutSandbox(ctx, rec)
	}
	if err == nil {
		err = s.setDeadline(ctx, vm, rec, ttl, connect)
	}
	if err != nil {
		fail(w, err)
		return
	}
	writeJSON(w, status, s.sandboxJSON(vm, rec))
}

type forkResult struct {
	Sandbox *sandboxJSON `json:"sandbox,omitempty"`
	Error   *apiError    `json:"error,omitempty"`
}

// fork makes count children of a running sandbox, each a sandbox with
// the parent's template, metadata and environment and its own timeout.
func (s *Server) fork(w http.ResponseWriter, r *http.Request) {
	var p struct {
		Timeout *int `json:"timeout"`
		Count   *int `json:"count"`
	}
	vm, rec, ok := s.decodeFind(w, r, &p, true)
	if !ok {
		return
	}
	if s.d.Fork == nil {
		notImplemented(w, "fork (issue 14)")
		return
	}
	ttl, err := timeout(p.Timeout)
	if err != nil {
		fail(w, err)
		return
	}
	count := 1
	if p.Count != nil {
		count = *p.Count
	}
	if count < 1 || count > 100 {
		writeError(w, http.StatusBadRequest, "count: want 1..100")
		return
	}
	ctx := context.WithoutCancel(r.Context())
	children, err := s.d.Fork.ForkSandbox(ctx, vm.Name, count, nil)
	if err != nil {
		fail(w, err)
		return
	}
	out := []forkResult{}
	for _, c := range children {
		child := store.Sandbox{VMID: c.ID, Template: templateOf(vm, rec), Metadata: rec.Metadata, EnvVars: rec.EnvVars,
			AutoPause: rec.AutoPause, StartedAt: s.d.Now(), Deadline: s.d.Now().Add(ttl), AccessToken: randID(32)}
		if err := s.d.Records.PutSandbox(ctx, child); err != nil {
			out = append(out, forkResult{Error: &apiError{Code: http.StatusInternalServerError, Message: err.Error()}})
			continue
		}
		sj := s.sandboxJSON(c, child)
		out = append(out, forkResult{Sandbox: &sj})
	}
	writeJSON(w, http.StatusCreated, out)
}

// network replaces a running sandbox's egress policy (issue 16).
func (s *Server) network(w http.ResponseWriter, r *http.Request) {
	var raw json.RawMessage
	vm, _, ok := s.decodeFind(w, r, &raw, false)
	if !ok {
		return
	}
	if s.d.Network == nil {
		notImplemented(w, "a sandbox network policy (issue 16)")
		return
	}
	if err := s.d.Network.SetSandboxNetwork(context.WithoutCancel(r.Context()), vm.Name, SandboxNetwork{Raw: raw}); err != nil {
		fail(w, err)
		return
	}
	w.WriteHeader(http.StatusNoContent)
}
