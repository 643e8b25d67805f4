package httpapi

import (
	"context"
	"net/http"
	"time"

	"github.com/banger-dev/banger/internal/api"
	"github.com/banger-dev/banger/internal/progress"
	"github.com/banger-dev/banger/internal/store"
)

// Forker forks a running sandbox (issue 14's fork, vms.Service.Fork):
// Count running children named As (one) or As-1…As-N.
type Forker interface {
	Fork(ctx context.Context, p api.ForkParams, r progress.Reporter) (api.ForkResult, error)
}

// NetworkPolicy changes a running VM's egress policy (issue 16,
// vms.Service.SetNetPolicy).
type NetworkPolicy interface {
	SetNetPolicy(ctx context.Context, p api.SetNetParams, r progress.Reporter) (api.VM, error)
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
	vm, rec, ttl, ok := s.findTTL(w, r, sec)
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

// findTTL checks a request's timeout (seconds), then finds its
// sandbox; false: the answer is written.
func (s *Server) findTTL(w http.ResponseWriter, r *http.Request, sec *int) (api.VM, store.Sandbox, time.Duration, bool) {
	ttl, err := timeout(sec)
	if err != nil {
		fail(w, err)
		return api.VM{}, store.Sandbox{}, 0, false
	}
	vm, rec, ok := s.find(w, r)
	return vm, rec, ttl, ok
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
	vm, rec, ttl, ok := s.findTTL(w, r, sec)
	if !ok {
		return
	}
	ctx := context.WithoutCancel(r.Context())
	status := http.StatusCreated
	var err error
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
	res, err := s.d.Fork.Fork(ctx, api.ForkParams{Name: vm.Name, Count: count, As: "sb-" + randID(10)}, nil)
	if err != nil {
		fail(w, err)
		return
	}
	out := []forkResult{}
	for _, c := range res.Children {
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
	var n e2bNetwork
	vm, _, ok := s.decodeFind(w, r, &n, false)
	if !ok {
		return
	}
	if s.d.Network == nil {
		notImplemented(w, "a sandbox network policy (issue 16)")
		return
	}
	// E2B: "Replaces the current egress rules …; omitting a field
	// clears it". Internet access left out keeps the mode.
	allow, deny := orEmpty(n.AllowOut), orEmpty(n.DenyOut)
	p := api.SetNetParams{Name: vm.Name, AllowOut: &allow, DenyOut: &deny}
	if m := mode(n.AllowInternetAccess); m != "" {
		p.Mode = &m
	}
	if _, err := s.d.Network.SetNetPolicy(context.WithoutCancel(r.Context()), p, nil); err != nil {
		fail(w, err)
		return
	}
	w.WriteHeader(http.StatusNoContent)
}
