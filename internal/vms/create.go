package vms

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"os"
	"regexp"
	"strings"

	"github.com/google/uuid"

	"github.com/banger-dev/banger/internal/api"
	"github.com/banger-dev/banger/internal/config"
	"github.com/banger-dev/banger/internal/guestssh"
	"github.com/banger-dev/banger/internal/image"
	"github.com/banger-dev/banger/internal/progress"
	"github.com/banger-dev/banger/internal/store"
)

// StageReserved is the progress stage sent once a created VM's row
// exists (a --no-wait create returns then).
const StageReserved = "reserve"

var dnsLabel = regexp.MustCompile(`^[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?$`)

// validateCreate checks everything about a create request that needs no
// I/O, and resolves the sizes.
func (s *Service) validateCreate(p *api.CreateParams) (config.Spec, error) {
	if p.Name == "" {
		p.Name = "vm-" + randHex(3)
	}
	if !dnsLabel.MatchString(p.Name) {
		return config.Spec{}, api.Invalidf("name %q is not a DNS label: use lowercase letters, digits and '-', at most 63, not starting or ending with '-'", p.Name)
	}
	if p.Image == "" {
		p.Image = s.Config.DefaultImage
	}
	var disk int64
	if p.DiskSize != "" {
		n, err := config.ParseSize(p.DiskSize)
		if err != nil {
			return config.Spec{}, api.Invalidf("--disk-size: %v", err)
		}
		disk = n
	}
	if p.VCPU < 0 || p.MemoryMiB < 0 {
		return config.Spec{}, api.Invalidf("--vcpu and --memory must be positive")
	}
	spec, err := config.Resolve(p.VCPU, p.MemoryMiB, disk, s.Config.VMDefaults, s.Host)
	if err != nil {
		return spec, api.Invalidf("%v", err)
	}
	return spec, nil
}

// create reserves, prepares and boots a VM. check, when set, sees the
// image once it is known (pulled if need be) and before anything is
// reserved, so a refusal leaves no VM row, disk or TAP behind. On failure
// before boot nothing is left; a guest that never becomes ready is marked
// failed with its console kept for diagnosis (vm delete removes it).
func (s *Service) create(ctx context.Context, p api.CreateParams, check func(store.Image) error, r progress.Reporter) (store.VM, error) {
	spec, err := s.validateCreate(&p)
	if err != nil {
		return store.VM{}, err
	}
	if _, err := s.Store.GetVM(ctx, p.Name); err == nil {
		return store.VM{}, api.Conflictf("a VM named %q already exists", p.Name)
	}
	drv, err := s.Drivers.get(p.VMM)
	if err != nil {
		return store.VM{}, err
	}
	img, kern, err := s.Artifacts.BootArtifacts(ctx, p.Image, r)
	if err != nil {
		return store.VM{}, err
	}
	plan := BootPlan{Image: img, Kernel: kern}
	if check != nil {
		if err := check(img); err != nil {
			return store.VM{}, err
		}
	}
	// The spec line comes once the image is known to exist (pulled or
	// built if need be) and acceptable: a mistyped image prints no spec.
	progress.Stage(r, api.StageSpec, spec.String())
	id := randHex(6)
	vm := store.VM{
		ID: id, Name: p.Name, Image: img.Name, Kernel: kern.Name, VMM: drv.Name(),
		VCPU: spec.VCPU, MemoryMiB: spec.MemoryMiB, DiskBytes: spec.DiskBytes,
		MAC: macFor(id), OverlayUUID: uuid.NewString(), WorkUUID: uuid.NewString(), State: store.StateCreating,
	}
	np, err := s.createNetPolicy(p.Net) // netpolicy.go
	if err != nil {
		return store.VM{}, err
	}
	ports, err := createPorts(p) // forward.go
	if err != nil {
		return store.VM{}, err
	}
	s.reserveMu.Lock()
	err = s.Store.ReserveVM(ctx, &vm, s.Net.Subnet(), s.Net.Gateway())
	s.reserveMu.Unlock()
	if err != nil {
		if errors.Is(err, store.ErrConflict) {
			return vm, api.Conflictf("a VM named %q already exists", vm.Name)
		}
		return vm, err
	}
	if err := s.putNetwork(ctx, vm.ID, np, ports); err != nil { // forward.go
		s.discard(ctx, vm)
		return vm, err
	}
	lock := s.lockVM(vm.ID)
	lock.Lock()
	defer lock.Unlock()
	// StageReserved tells a --no-wait caller the VM now exists.
	progress.Stage(r, StageReserved, fmt.Sprintf("%s at %s", vm.Name, vm.IP))
	// From here the request may be abandoned; the create finishes anyway
	// unless the caller explicitly tears it down.
	ctx = context.WithoutCancel(ctx)
	if err := s.bootNew(ctx, &vm, plan, p, r); err != nil { // warmboot.go
		return vm, err
	}
	return vm, nil
}

// makeDisks creates the VM's sparse overlay and work disks. The image is
// never copied.
func (s *Service) makeDisks(ctx context.Context, vm store.VM) error {
	dir := s.dir(vm.ID)
	return makeDiskPair(ctx, dir.Overlay(), dir.Work(), vm.DiskBytes, vm.OverlayUUID, vm.WorkUUID)
}

// makeDiskPair makes an overlay and a work disk: sparse ext4 of size
// bytes with the given filesystem UUIDs (a VM's, a warm template's).
func makeDiskPair(ctx context.Context, overlay, work string, size int64, overlayUUID, workUUID string) error {
	if err := image.MakeExt4(ctx, overlay, size, overlayUUID, "banger-overlay"); err != nil {
		return err
	}
	return image.MakeExt4(ctx, work, size, workUUID, "banger-work")
}

// newHostKey makes the VM's SSH host key, writes it to its directory and
// pins it in banger's known_hosts.
func (s *Service) newHostKey(vm store.VM) (priv, pub []byte, err error) {
	dir := s.dir(vm.ID)
	if priv, pub, err = guestssh.NewKeyPair("root@" + vm.Name); err != nil {
		return nil, nil, err
	}
	if err := os.WriteFile(dir.HostKey(), priv, 0o600); err != nil {
		return nil, nil, err
	}
	if err := os.WriteFile(dir.HostKeyPub(), pub, 0o644); err != nil {
		return nil, nil, err
	}
	return priv, pub, s.Keys.Pin(vm.Name, pub)
}

// discard removes every trace of a VM: TAP, files, pins and, only when
// all of those are gone, its row. A VM whose host objects could not all be
// removed keeps its row, marked failed with what is left, so it stays
// visible in `vm ls`/`vm show` and a second `vm delete` finishes the job.
func (s *Service) discard(ctx context.Context, vm store.VM) error {
	var errs []error
	if err := s.Net.DeleteTAP(ctx, TAPName(vm.ID)); err != nil {
		errs = append(errs, fmt.Errorf("tap %s: %w", TAPName(vm.ID), err))
	}
	for _, dir := range []string{s.dir(vm.ID).Runtime(), s.dir(vm.ID).Path()} {
		if err := os.RemoveAll(dir); err != nil {
			errs = append(errs, err)
		}
	}
	if err := s.Keys.Unpin(vm.Name); err != nil {
		errs = append(errs, fmt.Errorf("known_hosts pin: %w", err))
	}
	if err := errors.Join(errs...); err != nil {
		why := "delete incomplete, run `banger vm delete " + vm.Name + "` again: " + err.Error()
		if serr := s.Store.SetVMState(ctx, vm.ID, store.StateFailed, why); serr != nil {
			return errors.Join(err, serr)
		}
		return fmt.Errorf("delete %s: %w (the VM is kept, marked failed: `banger vm delete %s` again finishes the job)", vm.Name, err, vm.Name)
	}
	return s.Store.DeleteVM(ctx, vm.ID)
}

func randHex(n int) string {
	b := make([]byte, n)
	rand.Read(b)
	return hex.EncodeToString(b)
}

// macFor derives a stable, locally administered MAC from the VM id.
func macFor(id string) string {
	s := sha256.Sum256([]byte(id))
	return fmt.Sprintf("52:54:%02x:%02x:%02x:%02x", s[0], s[1], s[2], s[3])
}

// TAPName is a VM's TAP device name; it at most 15 bytes (IFNAMSIZ).
func TAPName(id string) string { return "bgt" + strings.ToLower(id[:min(len(id), 12)]) }
