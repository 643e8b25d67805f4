package httpapi

import (
	"context"
	"crypto/rand"
	"encoding/base32"
	"errors"
	"net/http"
	"time"

	"github.com/banger-dev/banger/internal/api"
	"github.com/banger-dev/banger/internal/progress"
	"github.com/banger-dev/banger/internal/store"
	"github.com/banger-dev/banger/internal/vms"
)

// VMs is what the API needs of the VM service (*vms.Service).
type VMs interface {
	Create(ctx context.Context, p api.CreateParams, r progress.Reporter) (api.VM, error)
	List(ctx context.Context) ([]api.VM, error)
	Show(ctx context.Context, name string) (api.VM, error)
	Delete(ctx context.Context, name string) (api.VM, error)
	Stop(ctx context.Context, name string) (api.VM, error)
	StopSave(ctx context.Context, name string, r progress.Reporter) (api.VM, error)
	StartWith(ctx context.Context, p api.StartParams, r progress.Reporter) (api.VM, error)
	Resume(ctx context.Context, name string, r progress.Reporter) (api.VM, error)
	Stats(ctx context.Context, name string) (api.VMStats, error)
	Logs(ctx context.Context, p api.LogsParams) (*vms.Session, error)
}

// Records keeps what E2B's API holds with a sandbox beside its VM
// (*store.Store).
type Records interface {
	PutSandbox(ctx context.Context, sb store.Sandbox) error
	GetSandbox(ctx context.Context, vmID string) (store.Sandbox, error)
	ListSandboxes(ctx context.Context) ([]store.Sandbox, error)
	SetSandboxDeadline(ctx context.Context, vmID string, deadline time.Time) error
}

// DefaultTimeout is a sandbox's time to live when a request gives none
// (E2B's default), MaxTimeout the longest one accepted (E2B's longest).
const (
	DefaultTimeout = 15 * time.Second
	MaxTimeout     = 24 * time.Hour
)

// noDeadline is the endAt of a sandbox the daemon never times out (a VM
// made with the CLI): E2B's endAt is required.
var noDeadline = time.Date(9999, 12, 31, 0, 0, 0, 0, time.UTC)

// E2B's sandbox states: a banger VM that is paused, saved or stopped can
// be continued, so it is "paused"; creating and failed VMs are not
// sandboxes yet (or any more).
const (
	statePaused  = "paused"
	stateRunning = "running"
)

func sandboxState(vmState string) string {
	switch vmState {
	case store.StateRunning:
		return stateRunning
	case store.StatePaused, store.StateSaved, store.StateStopped:
		return statePaused
	}
	return ""
}

type sandboxJSON struct {
	TemplateID      string  `json:"templateID"`
	SandboxID       string  `json:"sandboxID"`
	Alias           string  `json:"alias,omitempty"`
	ClientID        string  `json:"clientID"`
	EnvdVersion     string  `json:"envdVersion"`
	EnvdAccessToken string  `json:"envdAccessToken,omitempty"`
	Domain          *string `json:"domain"`
}

type listedSandbox struct {
	TemplateID  string            `json:"templateID"`
	Alias       string            `json:"alias,omitempty"`
	SandboxID   string            `json:"sandboxID"`
	ClientID    string            `json:"clientID"`
	StartedAt   time.Time         `json:"startedAt"`
	EndAt       time.Time         `json:"endAt"`
	CPUCount    int               `json:"cpuCount"`
	MemoryMB    int               `json:"memoryMB"`
	DiskSizeMB  int64             `json:"diskSizeMB"`
	Metadata    map[string]string `json:"metadata"`
	State       string            `json:"state"`
	EnvdVersion string            `json:"envdVersion"`
}

type lifecycleJSON struct {
	AutoResume bool   `json:"autoResume"`
	OnTimeout  string `json:"onTimeout"`
}

type sandboxDetail struct {
	listedSandbox
	EnvdAccessToken string         `json:"envdAccessToken,omitempty"`
	Domain          *string        `json:"domain"`
	Lifecycle       *lifecycleJSON `json:"lifecycle,omitempty"`
}

// clientID is E2B's (deprecated) node id; banger is one node.
const clientID = "banger"

func (s *Server) routes() {
	m := s.mux
	m.HandleFunc("POST /sandboxes", s.create)
	m.HandleFunc("POST /v2/sandboxes", s.create)
	m.HandleFunc("GET /sandboxes", s.listRunning)
	m.HandleFunc("GET /v2/sandboxes", s.list)
	m.HandleFunc("GET /sandboxes/{id}", s.get)
	m.HandleFunc("DELETE /sandboxes/{id}", s.kill)
	m.HandleFunc("POST /sandboxes/{id}/timeout", s.setTimeout)
	m.HandleFunc("POST /sandboxes/{id}/refreshes", s.refresh)
	m.HandleFunc("POST /sandboxes/{id}/pause", s.pause)
	m.HandleFunc("POST /sandboxes/{id}/resume", s.resume)
	m.HandleFunc("POST /sandboxes/{id}/connect", s.connect)
	m.HandleFunc("POST /v2/sandboxes/{id}/connect", s.connect)
	m.HandleFunc("POST /sandboxes/{id}/fork", s.fork)
	m.HandleFunc("PUT /sandboxes/{id}/network", s.network)
	m.HandleFunc("GET /sandboxes/{id}/metrics", s.metrics)
	m.HandleFunc("GET /sandboxes/{id}/logs", s.logs)
	m.HandleFunc("GET /v2/sandboxes/{id}/logs", s.logsV2)
	m.HandleFunc("GET /templates", s.templates)
	s.bangerRoutes()
	m.HandleFunc("/", func(w http.ResponseWriter, r *http.Request) {
		writeError(w, http.StatusNotFound, "no route "+r.Method+" "+r.URL.Path+" (GET /openapi.json describes banger's own; E2B's control plane is served as in its openapi.yml)")
	})
}

type newSandbox struct {
	TemplateID          string            `json:"templateID"`
	Timeout             *int              `json:"timeout"`
	AutoPause           bool              `json:"autoPause"`
	Metadata            map[string]string `json:"metadata"`
	EnvVars             map[string]string `json:"envVars"`
	Network             *e2bNetwork       `json:"network"`
	AllowInternetAccess *bool             `json:"allow_internet_access"`
}

// timeout checks a request's timeout in seconds (nil: the default).
func timeout(sec *int) (time.Duration, error) {
	if sec == nil || *sec == 0 {
		return DefaultTimeout, nil
	}
	d := time.Duration(*sec) * time.Second
	if *sec < 0 || d > MaxTimeout {
		return 0, api.Invalidf("timeout %d: want 0..%d seconds (0: %s)", *sec, int(MaxTimeout.Seconds()), DefaultTimeout)
	}
	return d, nil
}

// image is the banger image a template names: "base" (the SDK's
// default) is the daemon's default image.
func (s *Server) image(template string) string {
	if template == "" || template == "base" {
		return s.d.DefaultImage
	}
	return template
}

func (s *Server) create(w http.ResponseWriter, r *http.Request) {
	var p newSandbox
	if !decode(w, r, &p, false) {
		return
	}
	if p.TemplateID == "" {
		writeError(w, http.StatusBadRequest, "templateID is required: a banger image name (`banger image ls`), or \"base\" for the default image")
		return
	}
	ttl, err := timeout(p.Timeout)
	if err != nil {
		fail(w, err)
		return
	}
	name, token := "sb-"+randID(10), randID(32)
	rec := store.Sandbox{Template: p.TemplateID, Metadata: p.Metadata, EnvVars: p.EnvVars, AutoPause: p.AutoPause,
		StartedAt: s.d.Now(), AccessToken: token}
	ctx := context.WithoutCancel(r.Context())
	var recErr error
	// The record goes in as soon as the VM exists, with its deadline:
	// a daemon killed during the boot leaves a VM the reaper removes.
	rep := progress.Func(func(ev api.Progress) {
		if ev.Stage != vms.StageReserved || rec.VMID != "" {
			return
		}
		vm, err := s.d.VMs.Show(ctx, name)
		if err != nil {
			recErr = err
			return
		}
		rec.VMID, rec.Deadline = vm.ID, s.d.Now().Add(ttl)
		recErr = s.d.Records.PutSandbox(ctx, rec)
	})
	vm, err := s.d.VMs.Create(r.Context(), api.CreateParams{Name: name, Image: s.image(p.TemplateID),
		Net: netPolicy(p.Network, p.AllowInternetAccess)}, rep)
	if err == nil && recErr != nil {
		err = recErr
	}
	if err == nil && rec.VMID == "" { // a service that sent no reservation event
		rec.VMID = vm.ID
		err = s.d.Records.PutSandbox(ctx, rec)
	}
	if err == nil {
		err = s.d.Records.SetSandboxDeadline(ctx, vm.ID, s.d.Now().Add(ttl)) // the time to live starts now
	}
	if err != nil {
		if rec.VMID != "" {
			if _, derr := s.d.VMs.Delete(ctx, name); derr != nil {
				s.d.Log.Warn("removing a sandbox whose create failed", "sandbox", name, "err", derr)
			}
		}
		fail(w, err)
		return
	}
	writeJSON(w, http.StatusCreated, s.sandboxJSON(vm, rec))
}

func (s *Server) sandboxJSON(vm api.VM, rec store.Sandbox) sandboxJSON {
	return sandboxJSON{TemplateID: templateOf(vm, rec), SandboxID: vm.Name, ClientID: clientID,
		EnvdVersion: s.d.EnvdVersion, EnvdAccessToken: rec.AccessToken}
}

func templateOf(vm api.VM, rec store.Sandbox) string {
	if rec.Template != "" {
		return rec.Template
	}
	return vm.Image
}

func (s *Server) listed(vm api.VM, rec store.Sandbox) listedSandbox {
	l := listedSandbox{TemplateID: templateOf(vm, rec), SandboxID: vm.Name, ClientID: clientID,
		StartedAt: vm.CreatedAt, EndAt: noDeadline, CPUCount: vm.VCPU, MemoryMB: vm.MemoryMiB,
		DiskSizeMB: vm.DiskBytes >> 20, Metadata: rec.Metadata, State: sandboxState(vm.State), EnvdVersion: s.d.EnvdVersion}
	if !rec.StartedAt.IsZero() {
		l.StartedAt = rec.StartedAt
	}
	if !rec.Deadline.IsZero() {
		l.EndAt = rec.Deadline
	}
	if l.Metadata == nil {
		l.Metadata = map[string]string{}
	}
	return l
}

// find is the sandbox id names: a VM's exact name or id (never a
// prefix, unlike the CLI: a program's typo must not reach another VM),
// and its record, if it has one.
func (s *Server) find(w http.ResponseWriter, r *http.Request) (api.VM, store.Sandbox, bool) {
	id := r.PathValue("id")
	vm, err := s.d.VMs.Show(r.Context(), id)
	if err == nil && vm.Name != id && vm.ID != id {
		err = api.NotFoundf("sandbox %q not found", id)
	}
	if err != nil {
		var ae *api.Error
		if errors.As(err, &ae) && (ae.Code == api.CodeNotFound || ae.Code == api.CodeInvalid) {
			writeError(w, http.StatusNotFound, "sandbox \""+id+"\" not found")
		} else {
			fail(w, err)
		}
		return vm, store.Sandbox{}, false
	}
	rec, err := s.d.Records.GetSandbox(r.Context(), vm.ID)
	if err != nil && !errors.Is(err, store.ErrNotFound) {
		fail(w, err)
		return vm, rec, false
	}
	return vm, rec, true
}

// decodeFind decodes the request's body into v, then finds the sandbox
// the path names; false: the answer is written.
func (s *Server) decodeFind(w http.ResponseWriter, r *http.Request, v any, optional bool) (api.VM, store.Sandbox, bool) {
	if !decode(w, r, v, optional) {
		return api.VM{}, store.Sandbox{}, false
	}
	return s.find(w, r)
}

// adopt gives a VM made with the CLI a record (and so an access token
// and a deadline) the first time the API changes its lifetime.
func (s *Server) adopt(ctx context.Context, vm api.VM, rec store.Sandbox) (store.Sandbox, error) {
	if rec.VMID != "" {
		return rec, nil
	}
	rec = store.Sandbox{VMID: vm.ID, Template: vm.Image, StartedAt: vm.CreatedAt, AccessToken: randID(32)}
	return rec, s.d.Records.PutSandbox(ctx, rec)
}

func (s *Server) get(w http.ResponseWriter, r *http.Request) {
	vm, rec, ok := s.find(w, r)
	if !ok {
		return
	}
	st := sandboxState(vm.State)
	if st == "" {
		writeError(w, http.StatusNotFound, "sandbox \""+vm.Name+"\" is "+vm.State+", not running or paused")
		return
	}
	onTimeout := "kill"
	if rec.AutoPause {
		onTimeout = "pause"
	}
	writeJSON(w, http.StatusOK, sandboxDetail{listedSandbox: s.listed(vm, rec), EnvdAccessToken: rec.AccessToken,
		Lifecycle: &lifecycleJSON{OnTimeout: onTimeout}})
}

func (s *Server) kill(w http.ResponseWriter, r *http.Request) {
	vm, _, ok := s.find(w, r)
	if !ok {
		return
	}
	if _, err := s.d.VMs.Delete(context.WithoutCancel(r.Context()), vm.Name); err != nil {
		fail(w, err)
		return
	}
	w.WriteHeader(http.StatusNoContent)
}

var idEnc = base32.NewEncoding("abcdefghijklmnopqrstuvwxyz234567").WithPadding(base32.NoPadding)

// randID is n random lowercase letters and digits.
func randID(n int) string {
	b := make([]byte, n)
	if _, err := rand.Read(b); err != nil {
		panic(err) // crypto/rand does not fail on Linux
	}
	return idEnc.EncodeToString(b)[:n]
}

// accessToken is the envd access token of the sandbox a request names.
func (s *Server) accessToken(ctx context.Context, id string) (string, error) {
	vm, err := s.d.VMs.Show(ctx, id)
	if err != nil {
		return "", err
	}
	if vm.Name != id && vm.ID != id {
		return "", api.NotFoundf("sandbox %q not found", id)
	}
	rec, err := s.d.Records.GetSandbox(ctx, vm.ID)
	return rec.AccessToken, err
}
