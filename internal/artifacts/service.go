// Package artifacts owns images and kernels: build, pull, import,
// register, promote, export, list, delete, the catalogs, the golden-image
// recipe and the kernel module-disk upgrade, and what a boot needs of
// them (BootArtifacts, Initrd, KernelModules, GuestInit). Host files
// travel as streams: register and kernel import read the client's bytes
// from an io.Reader, export writes the bundle to an io.Writer; the
// service never opens a path the client named.
package artifacts

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"log/slog"
	"path/filepath"
	"regexp"
	"strings"
	"sync"

	"github.com/banger-dev/banger/internal/api"
	"github.com/banger-dev/banger/internal/config"
	"github.com/banger-dev/banger/internal/store"
)

// VMs is what promote needs of the VM service: a VM held stopped (its
// lifecycle lock taken, so it cannot start) while its overlay is read.
type VMs interface {
	// HoldStopped resolves the VM named name, locks it and checks that it
	// is stopped (or failed); release unlocks it. overlay is the VM's
	// overlay disk.
	HoldStopped(ctx context.Context, name string) (vm store.VM, overlay string, release func(), err error)
}

// Deps are the service's dependencies.
type Deps struct {
	Paths  config.Paths
	Config config.Config
	Log    *slog.Logger
	Store  *store.Store
	// AgentBinary finds banger-agent, which each initramfs carries.
	AgentBinary func() (string, error)
	// VMs serves promote; nil refuses promotes.
	VMs VMs
}

// Service is the artifacts service.
type Service struct {
	paths       config.Paths
	cfg         config.Config
	log         *slog.Logger
	store       *store.Store
	agentBinary func() (string, error)
	vms         VMs

	// provisionMu serialises image builds and kernel imports.
	provisionMu sync.Mutex
	// modulesTried holds kernel dirs whose module-disk upgrade was
	// attempted (kernel_modules.go): one try per daemon.
	modulesTried sync.Map
}

// New returns the service.
func New(d Deps) *Service {
	if d.Log == nil {
		d.Log = slog.Default()
	}
	return &Service{paths: d.Paths, cfg: d.Config, log: d.Log, store: d.Store, agentBinary: d.AgentBinary, vms: d.VMs}
}

var dnsLabel = regexp.MustCompile(`^[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?$`)

func randHex(n int) string {
	b := make([]byte, n)
	rand.Read(b)
	return hex.EncodeToString(b)
}

// within reports whether p is strictly inside dir.
func within(dir, p string) bool {
	rel, err := filepath.Rel(dir, p)
	return err == nil && rel != "." && !strings.HasPrefix(rel, "..") && !filepath.IsAbs(rel)
}

// defaultCommand is what an image runs when `vm run` is given no command:
// its Entrypoint followed by its Cmd, as `docker run IMAGE` does.
func defaultCommand(rt store.ImageRuntime) []string {
	return append(append([]string(nil), rt.Entrypoint...), rt.Cmd...)
}

// ImageView is an image as shown to users.
func ImageView(im store.Image) api.Image {
	return api.Image{Name: im.Name, Path: im.Path, SizeBytes: im.SizeBytes, Source: im.Source, CreatedAt: im.CreatedAt}
}

// KernelView is a kernel as shown to users.
func KernelView(k store.Kernel) api.Kernel {
	return api.Kernel{Name: k.Name, Release: k.Release, Dir: k.Dir, Source: k.Source, CreatedAt: k.CreatedAt}
}
