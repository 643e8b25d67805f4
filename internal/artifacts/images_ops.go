package artifacts

import (
	"context"
	"errors"
	"fmt"
	"os"
	"strings"

	"github.com/banger-dev/banger/internal/api"
	"github.com/banger-dev/banger/internal/image"
	"github.com/banger-dev/banger/internal/progress"
	"github.com/banger-dev/banger/internal/store"
	"github.com/banger-dev/banger/internal/suggest"
)

func (s *Service) getImage(ctx context.Context, name string) (store.Image, error) {
	im, err := s.store.GetImage(ctx, name)
	if errors.Is(err, store.ErrNotFound) {
		var names []string
		if ims, lerr := s.store.ListImages(ctx); lerr == nil {
			for _, i := range ims {
				names = append(names, i.Name)
			}
		}
		return im, api.NotFoundf("no image named %q%s", name, suggest.Hint(name, names, "`banger image ls` lists images"))
	}
	return im, err
}

func (s *Service) imageInfo(ctx context.Context, im store.Image, notes []string) (api.ImageInfo, error) {
	info := api.ImageInfo{Image: ImageView(im), UUID: im.UUID, Kernel: im.Kernel, Init: im.Init,
		HasSSHD: im.HasSSHD, Digest: im.Digest, Ref: im.Ref, Notes: notes, Runtime: api.ImageRuntime(im.Runtime)}
	var err error
	info.UsedBy, err = s.store.VMsUsing(ctx, "image", im.Name)
	return info, err
}

// deleteImage refuses while VMs use the image (naming them), then drops
// the row and the file when banger owns it and no other name shares it.
func (s *Service) deleteImage(ctx context.Context, name string) error {
	im, err := s.getImage(ctx, name)
	if err != nil {
		return err
	}
	shared, err := s.store.DeleteImage(ctx, name)
	var inUse *store.InUseError
	if errors.As(err, &inUse) {
		return api.Conflictf("image %s is used by VM(s) %s: delete them first (`banger vm delete NAME`)", name, strings.Join(inUse.VMs, ", "))
	}
	if err != nil {
		return err
	}
	// A golden build in ~/.cache stays: `image build` reuses it.
	if !shared && within(s.paths.ImageDir(), im.Path) {
		return os.Remove(im.Path)
	}
	return nil
}

// promoteImage merges a stopped VM's overlay onto its image into a new
// image. The VM's lock is held throughout so it cannot start meanwhile.
func (s *Service) promoteImage(ctx context.Context, p api.PromoteImageParams, r progress.Reporter) (store.Image, []string, error) {
	if !dnsLabel.MatchString(p.Name) {
		return store.Image{}, nil, api.Invalidf("image name %q: use lowercase letters, digits and '-' (--name)", p.Name)
	}
	if s.vms == nil {
		return store.Image{}, nil, api.Invalidf("image promote: no VM service")
	}
	vm, overlay, release, err := s.vms.HoldStopped(ctx, p.VM)
	if err != nil {
		return store.Image{}, nil, err
	}
	defer release()
	if _, err := s.store.GetImage(ctx, p.Name); err == nil {
		return store.Image{}, nil, api.Conflictf("image %q already exists", p.Name)
	}
	base, err := s.store.GetImage(ctx, vm.Image)
	if err != nil {
		return store.Image{}, nil, err
	}
	tmp, err := s.newImageFile(p.Name)
	if err != nil {
		return store.Image{}, nil, err
	}
	defer discardTemp(tmp)
	var notes []string
	bar := progress.NewBytes(r, api.StageFlatten, "merging "+vm.Name+"'s overlay onto "+base.Name)
	res, err := image.Promote(ctx, base.Path, overlay, tmp, image.FlattenOptions{
		Progress: bar.Update, Note: func(m string) { notes = append(notes, m) }})
	if pe := (*image.PanicError)(nil); errors.As(err, &pe) {
		// The guest wrote that disk: a reader bug it reaches fails this
		// promote only. The stack is for the bug report.
		s.log.Error("promote: panic while reading the disks", "vm", vm.Name, "panic", fmt.Sprint(pe.Value), "stack", string(pe.Stack))
	}
	if err != nil {
		return store.Image{}, nil, fmt.Errorf("promote %s: %w", vm.Name, err)
	}
	bar.Finish()
	notes = append(notes, describeContents(res.Init, res.InitTarget, res.HasSSHD)...)
	im, err := s.publish(ctx, tmp, store.Image{Name: p.Name, Source: fmt.Sprintf("promote of vm %s (image %s)", vm.Name, base.Name),
		Kernel: base.Kernel, Init: initOf(res.Init), HasSSHD: res.HasSSHD, Runtime: base.Runtime})
	return im, notes, err
}

// NoInitPath is what GuestConfig.Init names for an image recorded as
// having no init: a path the agent's own /run tmpfs never holds, so the
// agent finds nothing to hand over to and stays PID 1 (the contract of
// proto.GuestConfig.Init). This also keeps container images whose
// /sbin/init is, say, busybox from being booted into a getty loop.
const NoInitPath = "/run/banger/no-init"

// GuestInit is the GuestConfig.Init for a VM of this image.
func (s *Service) GuestInit(imageName string) string {
	im, err := s.store.GetImage(context.Background(), imageName)
	switch {
	case err != nil:
		return ""
	case im.Init == store.InitNone:
		return NoInitPath
	}
	return im.Init
}

// SSHDMissing explains, for an image recorded without sshd, why `vm ssh`
// cannot work; nil when the image has (or may have) one.
func (s *Service) SSHDMissing(ctx context.Context, vm store.VM) error {
	im, err := s.store.GetImage(ctx, vm.Image)
	if err != nil || im.HasSSHD {
		return nil
	}
	return api.Conflictf("image %s has no sshd, so vm %s cannot be reached with ssh: run commands through banger's agent with `banger vm exec %s -- CMD`, or use an image with openssh-server", im.Name, vm.Name, vm.Name)
}
