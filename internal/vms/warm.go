package vms

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"time"

	"github.com/banger-dev/banger/internal/image"
	"github.com/banger-dev/banger/internal/store"
	"github.com/banger-dev/banger/internal/vmm"
)

// Warm starts (ARCHITECTURE.md, "Warm starts"). A template is a start-up
// snapshot of a short-lived machine with a VM's device set, booted to the
// end of its boot (systemd settled, sshd listening: snapshot point C),
// memory in a shared file, its overlay and work disks as they were at
// that instant (warmcapture.go). It lives in <cache>/warm/<key>/ and is
// complete once that directory has its final name. A create whose key
// has a template restores it with copies of those disks, then gives the
// running guest its own identity, as a fork's child gets it
// (warmboot.go).

// warmFormat is the version of banger's template layout and of what the
// key covers; raising it retires every template.
const warmFormat = 2

// warmMeta is <template>/meta.json.
type warmMeta struct {
	Format     int       `json:"format"`
	Key        string    `json:"key"`
	Image      string    `json:"image"`
	Driver     string    `json:"driver"`
	VMMVersion string    `json:"vmm_version"`
	CreatedAt  time.Time `json:"created_at"`
	// The template's identity, which a clone's disks and NIC carry until
	// it gets its own: the filesystem UUIDs of the overlay and work disks
	// (a clone keeps them, as a fork's child keeps its parent's) and the
	// NIC's MAC (the one reidentify renumbers).
	OverlayUUID string `json:"overlay_uuid"`
	WorkUUID    string `json:"work_uuid"`
	MAC         string `json:"mac"`
	// Settled says how far the template booted: "systemd" (the system
	// finished starting) or "agent" (an image without systemd).
	Settled string `json:"settled"`
}

// warmState is the service's bookkeeping of template captures.
type warmState struct {
	mu       sync.Mutex
	attempts map[string]int // captures tried per key by this daemon
	busy     bool           // one capture at a time
	cancel   context.CancelFunc
	sums     map[string]string
}

// maxCaptures is how often one daemon tries to capture one key's template.
const maxCaptures = 2

func (s *Service) warmRoot() string { return s.Paths.WarmDir() }

func (s *Service) warmDir(key string) string { return filepath.Join(s.warmRoot(), key) }

// warmMem is a template's memory file.
func warmMem(dir string) string { return filepath.Join(dir, "mem") }

// warmKey identifies what a template must match: banger's template
// format, the VMM and its version, the machine's size and device set, the
// size of its own disks (a clone's are copies of the template's), the
// kernel, the initramfs (which carries the agent and the modules), the
// read-only disks every VM of the image shares, the key banger logs in
// with (the template's authorized_keys) and the image's init. A rebuilt
// image, a new agent or an upgraded VMM gives another key, and the old
// template is simply never found again.
func (s *Service) warmKey(drv vmm.Driver, plan BootPlan, vm store.VM, spec vmm.Spec) (string, error) {
	type diskKey struct {
		ID, File string
		ReadOnly bool
	}
	k := struct {
		Format       int
		Driver       string
		VMM, Accel   string
		Image        string
		VCPU, Memory int
		DiskBytes    int64
		Kernel       string
		Initrd       string
		Disks        []diskKey
		Net          bool
		Authorized   string
		Init         string
	}{Format: warmFormat, Driver: drv.Name(), VMM: vmmVersion(drv), Accel: drv.Accel(), Image: plan.Image.Name,
		VCPU: spec.VCPU, Memory: spec.MemoryMiB, DiskBytes: vm.DiskBytes, Net: spec.Net != nil, Init: plan.guestInit()}
	var err error
	if _, k.Authorized, err = s.Keys.EnsureUserKey(); err != nil {
		return "", err
	}
	if k.Kernel, err = fileIdentity(spec.Kernel); err != nil {
		return "", err
	}
	if k.Initrd, err = s.fileSum(spec.Initrd); err != nil {
		return "", err
	}
	for _, d := range spec.Disks {
		dk := diskKey{ID: d.ID, ReadOnly: d.ReadOnly}
		// The VM's own disks and config drive differ per VM; the shared
		// read-only ones (the image, the kernel's modules) are the same.
		if d.ReadOnly && d.ID != "config" {
			if dk.File, err = fileIdentity(d.Path); err != nil {
				return "", err
			}
		}
		k.Disks = append(k.Disks, dk)
	}
	b, _ := json.Marshal(k)
	sum := sha256.Sum256(b)
	return hex.EncodeToString(sum[:]), nil
}

// vmmVersion is the driver's VMM version (vmm.Versioner), or "" when it
// reports none or cannot read it.
func vmmVersion(drv vmm.Driver) string {
	if v, ok := drv.(vmm.Versioner); ok {
		if s, err := v.Version(context.Background()); err == nil {
			return s
		}
	}
	return ""
}

// fileIdentity is a file's path, size and modification time.
func fileIdentity(path string) (string, error) {
	fi, err := os.Stat(path)
	if err != nil {
		return "", err
	}
	return fmt.Sprintf("%s:%d:%d", path, fi.Size(), fi.ModTime().UnixNano()), nil
}

// fileSum is the sha256 of a file's content, remembered per identity.
func (s *Service) fileSum(path string) (string, error) {
	id, err := fileIdentity(path)
	if err != nil {
		return "", err
	}
	s.warm.mu.Lock()
	sum, ok := s.warm.sums[id]
	s.warm.mu.Unlock()
	if ok {
		return sum, nil
	}
	if sum, err = image.FileSHA256(path); err != nil {
		return "", err
	}
	s.warm.mu.Lock()
	if s.warm.sums == nil {
		s.warm.sums = map[string]string{}
	}
	s.warm.sums[id] = sum
	s.warm.mu.Unlock()
	return sum, nil
}

// findTemplate returns the complete template of key, if there is one.
func (s *Service) findTemplate(key string) (string, warmMeta, bool) {
	dir := s.warmDir(key)
	b, err := os.ReadFile(filepath.Join(dir, "meta.json"))
	if err != nil {
		return "", warmMeta{}, false
	}
	var m warmMeta
	if json.Unmarshal(b, &m) != nil || m.Format != warmFormat || m.Key != key {
		return "", warmMeta{}, false
	}
	return dir, m, true
}

// removeTemplate deletes a template that failed to start a VM, so that
// a later create captures a new one.
func (s *Service) removeTemplate(key string) {
	if err := os.RemoveAll(s.warmDir(key)); err != nil {
		s.Log.Warn("remove warm-start template", "key", key[:12], "err", err)
	}
}

// staleCapture is the age past which an unfinished capture is a dead
// daemon's leftover: a capture is bounded by boot_timeout, far less. A
// younger one may be another daemon's at work in the same cache (two
// users' daemons never share one; test suites' do).
const staleCapture = time.Hour

// PruneTemplates removes stale unfinished captures and the templates of
// images that no longer exist (daemon start). A template of an image that
// was rebuilt keeps its directory until then: its key is never asked for.
func (s *Service) PruneTemplates(ctx context.Context) {
	// a template VMM left by a daemon that died during a capture
	s.endTemplateVMMs("warm-*")
	ents, err := os.ReadDir(s.warmRoot())
	if err != nil {
		return
	}
	for _, e := range ents {
		dir := filepath.Join(s.warmRoot(), e.Name())
		if strings.HasSuffix(e.Name(), ".tmp") {
			if fi, err := e.Info(); err == nil && time.Since(fi.ModTime()) > staleCapture {
				os.RemoveAll(dir)
			}
			continue
		}
		_, m, ok := s.findTemplate(e.Name())
		if ok {
			if _, err := s.Store.GetImage(ctx, m.Image); err == nil {
				continue
			}
		}
		s.Log.Info("removing a warm-start template", "dir", dir)
		os.RemoveAll(dir)
	}
}

// endTemplateVMMs ends the template VMMs whose runtime directories match
// pattern (warm-* captures, fork-* fork templates: forkshare.go) and
// removes those directories: left by a daemon that died while one ran.
func (s *Service) endTemplateVMMs(pattern string) {
	rts, _ := filepath.Glob(filepath.Join(s.Paths.RuntimeDir, pattern))
	for _, rt := range rts {
		marker := vmm.Marker(filepath.Base(rt))
		if pids := vmm.FindMarked(marker); len(pids) > 0 {
			if err := vmm.KillMarked(pids, marker, 10*time.Second); err != nil {
				s.Log.Warn("end a leftover template vmm", "pids", pids, "err", err)
			}
		}
		os.RemoveAll(rt)
	}
}
