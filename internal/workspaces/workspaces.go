// Package workspaces imports host repositories into running VMs and
// takes the guests' changes back as patches (vm workspace prepare|export,
// and the import of vm run REPO).
//
// The client plans the import and builds the archive (internal/workspace);
// the service never opens the user's repository. It relays the archive
// it is given into the guest agent's copy_in, which builds the tree beside
// its target and renames it into place only once the archive's trailer
// has arrived: an archive that fails or ends early leaves nothing.
package workspaces

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"sync"
	"time"

	agentclient "github.com/banger-dev/banger/internal/agent/client"
	"github.com/banger-dev/banger/internal/agent/proto"
	"github.com/banger-dev/banger/internal/api"
	"github.com/banger-dev/banger/internal/progress"
	"github.com/banger-dev/banger/internal/workspace"
)

// StageWorkspace is the progress stage of an import.
const StageWorkspace = "workspace"

// VM is what the service knows of a VM.
type VM struct {
	ID, Name, State string
}

// Agent is a running VM's guest agent, as far as the service uses it
// (*agent/client.Client is one).
type Agent interface {
	// Open sends an op whose reply is followed by a byte stream.
	Open(ctx context.Context, op string, params any) (net.Conn, json.RawMessage, error)
	// Done is closed when the agent's session ends (the VM stops).
	Done() <-chan struct{}
}

// Guests is what the service needs of the VM side.
type Guests interface {
	// Lookup finds a VM by name, id or unique prefix; its errors are the
	// caller's (not found, ambiguous).
	Lookup(ctx context.Context, name string) (VM, error)
	// Agent is the agent of a running VM; ErrNotRunning when it is not.
	Agent(ctx context.Context, id string) (Agent, error)
	// Running reports whether the VM runs.
	Running(id string) bool
}

// ErrNotRunning is what Guests.Agent returns for a VM that is not running.
var ErrNotRunning = errors.New("vm is not running")

// Deps are the service's dependencies.
type Deps struct {
	Guests Guests
	Log    *slog.Logger
	// GuestFS maps a guest path to where the agent writes it: the
	// identity in production; daemon tests run the agent on the host and
	// point it at a temporary directory. Nil is the identity.
	GuestFS func(string) string
}

// Service imports workspaces and exports their changes.
type Service struct {
	guests  Guests
	log     *slog.Logger
	guestFS func(string) string
	// locks serialises imports into one VM, by VM id. It is separate
	// from the VM's lifecycle lock, which an import never holds: vm stop
	// or delete proceeds while a copy streams, and ends it.
	locks sync.Map
}

// New returns a Service.
func New(d Deps) *Service {
	s := &Service{guests: d.Guests, log: d.Log, guestFS: d.GuestFS}
	if s.log == nil {
		s.log = slog.Default()
	}
	if s.guestFS == nil {
		s.guestFS = func(p string) string { return p }
	}
	return s
}

func (s *Service) lock(id string) *sync.Mutex {
	l, _ := s.locks.LoadOrStore(id, &sync.Mutex{})
	return l.(*sync.Mutex)
}

func notRunning(vm VM) error {
	return api.Conflictf("vm %s is %s: start it with `banger vm start %s`", vm.Name, vm.State, vm.Name)
}

// CheckSpec checks what a client says about its import before anything
// is touched: the guest path is the only part the service acts on. It
// returns the spec with the guest path made absolute; nil stays nil.
func CheckSpec(spec *api.WorkspaceSpec) (*api.WorkspaceSpec, error) {
	if spec == nil {
		return nil, nil
	}
	s := *spec
	guest, err := workspace.GuestPath(s.GuestPath)
	if err != nil {
		return nil, api.Invalidf("%v", err)
	}
	s.GuestPath = guest
	return &s, nil
}

// runningVM finds a running VM by name.
func (s *Service) runningVM(ctx context.Context, name string) (VM, error) {
	vm, err := s.guests.Lookup(ctx, name)
	if err != nil {
		return vm, err
	}
	if !s.guests.Running(vm.ID) {
		return vm, notRunning(vm)
	}
	return vm, nil
}

// Prepare imports the archive of the planned import p into the running
// VM p.Name (vm workspace prepare). archive is the tar stream and the
// agent's trailer, as workspace.Plan.Send writes it.
func (s *Service) Prepare(ctx context.Context, p api.WorkspacePrepareParams, archive io.Reader, r progress.Reporter) (api.Workspace, error) {
	vm, err := s.runningVM(ctx, p.Name)
	if err != nil {
		return api.Workspace{}, err
	}
	spec, err := CheckSpec(&p.WorkspaceSpec)
	if err != nil {
		return api.Workspace{}, err
	}
	return s.Import(ctx, vm, *spec, archive, r)
}

// ImportForRun imports a vm run's repository (spec checked by CheckSpec;
// nil: none) into its new VM, once the VM is up and before the command
// starts. It returns the directory the command runs in unless the
// request names one ("" without a repository).
func (s *Service) ImportForRun(ctx context.Context, vm VM, spec *api.WorkspaceSpec, archive io.Reader, r progress.Reporter) (string, error) {
	if spec == nil {
		return "", nil
	}
	if _, err := s.Import(ctx, vm, *spec, archive, r); err != nil {
		return "", err
	}
	return s.guestFS(spec.GuestPath), nil
}

// Import relays archive into a fresh copy_in at spec.GuestPath (checked
// by CheckSpec) in a running VM. Imports into one VM run one at a time.
// An archive that fails to read (the client left) or ends early leaves
// nothing in the guest; so does the VM stopping during the copy.
func (s *Service) Import(ctx context.Context, vm VM, spec api.WorkspaceSpec, archive io.Reader, r progress.Reporter) (api.Workspace, error) {
	res := api.Workspace{VM: vm.Name, GuestPath: spec.GuestPath, Commit: spec.Commit, Branch: spec.Branch}
	lock := s.lock(vm.ID)
	lock.Lock()
	defer lock.Unlock()
	if !s.guests.Running(vm.ID) {
		return res, notRunning(vm)
	}
	start := time.Now()
	progress.Stage(r, StageWorkspace, fmt.Sprintf("%s → %s", spec.Summary, spec.GuestPath))
	ac, err := s.guests.Agent(ctx, vm.ID)
	if errors.Is(err, ErrNotRunning) {
		return res, notRunning(vm)
	}
	if err != nil {
		return res, err
	}
	st, _, err := ac.Open(ctx, proto.OpCopyIn, proto.CopyInParams{Dir: s.guestFS(spec.GuestPath), Fresh: true, DirMode: 0o755})
	if err != nil {
		return res, s.importError(vm, ac, err, "")
	}
	cr, err := relayArchive(ctx, st, archive)
	if err != nil {
		return res, s.importError(vm, ac, err, " (the guest keeps nothing of the archive)")
	}
	res.Files, res.Bytes, res.Seconds = spec.Files, cr.Bytes, time.Since(start).Seconds()
	s.log.Info("workspace imported", "vm", vm.Name, "path", spec.GuestPath, "files", res.Files, "bytes", res.Bytes, "dur", time.Since(start))
	return res, nil
}

// importError words an import's failure for the client; note ends it.
// A VM that is gone, or whose agent session ended (it is stopping), is
// the cause whatever the error says.
func (s *Service) importError(vm VM, ac Agent, err error, note string) error {
	var re *agentclient.RequestError
	ended := false
	select {
	case <-ac.Done():
		ended = true
	default:
	}
	switch {
	case ended || !s.guests.Running(vm.ID):
		return fmt.Errorf("import into %s: the VM stopped during the copy", vm.Name)
	case errors.As(err, &re) && !errors.As(err, new(archiveError)):
		return api.Conflictf("import into %s: %s%s", vm.Name, re.Message, note)
	default:
		return fmt.Errorf("import into %s: %w%s", vm.Name, err, note)
	}
}

// Export checks a workspace export and returns the VM and the command
// that writes the patch (or the changed paths) to its stdout; the
// transport runs it as an exec stream. Nothing on the host interprets
// the patch.
func (s *Service) Export(ctx context.Context, p api.WorkspaceExportParams) (VM, proto.ExecRequest, error) {
	vm, err := s.guests.Lookup(ctx, p.Name)
	if err != nil {
		return vm, proto.ExecRequest{}, err
	}
	guest, err := workspace.GuestPath(p.GuestPath)
	if err != nil {
		return vm, proto.ExecRequest{}, api.Invalidf("%v", err)
	}
	if !s.guests.Running(vm.ID) {
		return vm, proto.ExecRequest{}, notRunning(vm)
	}
	return vm, workspace.ExportRequest(s.guestFS(guest), p.Base, p.NameOnly), nil
}
