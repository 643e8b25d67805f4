package daemon

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
	"github.com/banger-dev/banger/internal/rpc"
	"github.com/banger-dev/banger/internal/store"
)

// progressFn reports a stage of a long operation.
type progressFn func(stage, msg string)

// stageReserved is the progress stage sent once the VM's row exists.
const stageReserved = "reserve"

var dnsLabel = regexp.MustCompile(`^[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?$`)

func invalid(format string, a ...any) error {
	return &api.Error{Code: api.CodeInvalid, Message: fmt.Sprintf(format, a...)}
}

func conflict(format string, a ...any) error {
	return &api.Error{Code: api.CodeConflict, Message: fmt.Sprintf(format, a...)}
}

func notFound(format string, a ...any) error {
	return &api.Error{Code: api.CodeNotFound, Message: fmt.Sprintf(format, a...)}
}

// validateCreate checks everything about a create request that needs no
// I/O, and resolves the sizes.
func (d *Daemon) validateCreate(p *api.CreateParams) (config.Spec, error) {
	if p.Name == "" {
		p.Name = "vm-" + randHex(3)
	}
	if !dnsLabel.MatchString(p.Name) {
		return config.Spec{}, invalid("name %q is not a DNS label: use lowercase letters, digits and '-', at most 63, not starting or ending with '-'", p.Name)
	}
	if p.Image == "" {
		p.Image = d.cfg.DefaultImage
	}
	var disk int64
	if p.DiskSize != "" {
		n, err := config.ParseSize(p.DiskSize)
		if err != nil {
			return config.Spec{}, invalid("--disk-size: %v", err)
		}
		disk = n
	}
	if p.VCPU < 0 || p.MemoryMiB < 0 {
		return config.Spec{}, invalid("--vcpu and --memory must be positive")
	}
	spec, err := config.Resolve(p.VCPU, p.MemoryMiB, disk, d.cfg.VMDefaults, d.host)
	if err != nil {
		return spec, invalid("%v", err)
	}
	return spec, nil
}

// createVM reserves, prepares and boots a VM. On failure before boot
// nothing is left; a guest that never becomes ready is marked failed with
// its console kept for diagnosis (vm delete removes it).
func (d *Daemon) createVM(ctx context.Context, p api.CreateParams, progress progressFn) (store.VM, error) {
	return d.createVMChecked(ctx, p, nil, progress)
}

// createVMChecked is createVM with a check of the image once it is known
// (pulled if need be) and before anything is reserved, so a refusal
// leaves no VM row, disk or TAP behind.
func (d *Daemon) createVMChecked(ctx context.Context, p api.CreateParams, check func(store.Image) error, progress progressFn) (store.VM, error) {
	spec, err := d.validateCreate(&p)
	if err != nil {
		return store.VM{}, err
	}
	if _, err := d.store.GetVM(ctx, p.Name); err == nil {
		return store.VM{}, conflict("a VM named %q already exists", p.Name)
	}
	drv, err := d.drivers.get(p.VMM)
	if err != nil {
		return store.VM{}, err
	}
	img, kern, err := d.ensureArtifacts(ctx, p.Image, progress)
	if err != nil {
		return store.VM{}, err
	}
	if check != nil {
		if err := check(img); err != nil {
			return store.VM{}, err
		}
	}
	// The spec line comes once the image is known to exist (pulled or
	// built if need be) and acceptable: a mistyped image prints no spec.
	progress(api.StageSpec, spec.String())
	id := randHex(6)
	vm := store.VM{
		ID: id, Name: p.Name, Image: img.Name, Kernel: kern.Name, VMM: drv.Name(),
		VCPU: spec.VCPU, MemoryMiB: spec.MemoryMiB, DiskBytes: spec.DiskBytes,
		MAC: macFor(id), OverlayUUID: uuid.NewString(), WorkUUID: uuid.NewString(), State: store.StateCreating,
	}
	d.reserveMu.Lock()
	err = d.store.ReserveVM(ctx, &vm, d.net.Subnet(), d.net.Gateway())
	d.reserveMu.Unlock()
	if err != nil {
		if errors.Is(err, store.ErrConflict) {
			return vm, conflict("a VM named %q already exists", vm.Name)
		}
		return vm, err
	}
	lock := d.vmLock(vm.ID)
	lock.Lock()
	defer lock.Unlock()
	// StageReserved tells a --no-wait caller the VM now exists.
	progress(stageReserved, fmt.Sprintf("%s at %s", vm.Name, vm.IP))
	// From here the request may be abandoned; the create finishes anyway
	// unless the caller explicitly tears it down.
	ctx = context.WithoutCancel(ctx)
	progress("disks", fmt.Sprintf("overlay + work disk (%s, sparse)", config.FormatSize(vm.DiskBytes)))
	if err := d.prepareDisks(ctx, vm); err != nil {
		d.discard(ctx, vm)
		return vm, fmt.Errorf("prepare disks: %w", err)
	}
	if err := d.bootVM(ctx, &vm, p.WaitSSH, progress); err != nil {
		return vm, err
	}
	return vm, nil
}

// prepareDisks creates the VM's sparse overlay and work disks and its SSH
// host key. The image is never copied.
func (d *Daemon) prepareDisks(ctx context.Context, vm store.VM) error {
	dir := d.dir(vm.ID)
	if err := os.MkdirAll(dir.Path(), 0o700); err != nil {
		return err
	}
	if err := image.MakeExt4(ctx, dir.Overlay(), vm.DiskBytes, vm.OverlayUUID, "banger-overlay"); err != nil {
		return err
	}
	if err := image.MakeExt4(ctx, dir.Work(), vm.DiskBytes, vm.WorkUUID, "banger-work"); err != nil {
		return err
	}
	priv, pub, err := guestssh.NewKeyPair("root@" + vm.Name)
	if err != nil {
		return err
	}
	if err := os.WriteFile(dir.HostKey(), priv, 0o600); err != nil {
		return err
	}
	if err := os.WriteFile(dir.HostKeyPub(), pub, 0o644); err != nil {
		return err
	}
	return d.keys.Pin(vm.Name, pub)
}

// discard removes every trace of a VM: TAP, files, pins and, only when
// all of those are gone, its row. A VM whose host objects could not all be
// removed keeps its row, marked failed with what is left, so it stays
// visible in `vm ls`/`vm show` and a second `vm delete` finishes the job.
func (d *Daemon) discard(ctx context.Context, vm store.VM) error {
	var errs []error
	if err := d.net.DeleteTAP(ctx, tapName(vm.ID)); err != nil {
		errs = append(errs, fmt.Errorf("tap %s: %w", tapName(vm.ID), err))
	}
	for _, dir := range []string{d.dir(vm.ID).Runtime(), d.dir(vm.ID).Path()} {
		if err := os.RemoveAll(dir); err != nil {
			errs = append(errs, err)
		}
	}
	if err := d.keys.Unpin(vm.Name); err != nil {
		errs = append(errs, fmt.Errorf("known_hosts pin: %w", err))
	}
	if err := errors.Join(errs...); err != nil {
		why := "delete incomplete, run `banger vm delete " + vm.Name + "` again: " + err.Error()
		if serr := d.store.SetVMState(ctx, vm.ID, store.StateFailed, why); serr != nil {
			return errors.Join(err, serr)
		}
		return fmt.Errorf("delete %s: %w (the VM is kept, marked failed: `banger vm delete %s` again finishes the job)", vm.Name, err, vm.Name)
	}
	return d.store.DeleteVM(ctx, vm.ID)
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

// tapName is at most 15 bytes (IFNAMSIZ).
func tapName(id string) string { return "bgt" + strings.ToLower(id[:min(len(id), 12)]) }

var _ = rpc.ErrUpgraded
