package agent

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"time"

	"github.com/banger-dev/banger/internal/agent/proto"
)

// diskPoll is how often /sys/block is rescanned while disks are missing:
// virtio-blk devices appear asynchronously after their module loads.
const diskPoll = 20 * time.Millisecond

// diskScan accumulates what boot has learned about the guest's disks.
type diskScan struct {
	devDir string                // where device nodes are: /dev
	list   func() []string       // device names: blockDevices
	probed map[string]probedDisk // by device name; only successful probes
	cfg    *proto.GuestConfig
}

// findDisks waits until the config drive and every disk it names are
// present, and returns the config and the device of each role.
func findDisks(ctx context.Context, log *slog.Logger) (proto.GuestConfig, map[string]string, error) {
	scan := &diskScan{devDir: "/dev", list: blockDevices, probed: map[string]probedDisk{}}
	t := time.NewTicker(diskPoll)
	defer t.Stop()
	for {
		roles, err := scan.step()
		if roles != nil {
			for role, dev := range roles {
				log.Info("disk found", "role", role, "dev", dev)
			}
			return *scan.cfg, roles, nil
		}
		var fatal fatalDiskError
		if errors.As(err, &fatal) {
			return proto.GuestConfig{}, nil, err
		}
		select {
		case <-t.C:
		case <-ctx.Done():
			return proto.GuestConfig{}, nil, fmt.Errorf("%w (block devices: %s)", err, scan.summary())
		}
	}
}

// fatalDiskError is a problem that waiting cannot fix.
type fatalDiskError struct{ error }

// step probes new devices and tries to match roles. A nil map with an
// error says what is still missing.
func (s *diskScan) step() (map[string]string, error) {
	for _, name := range s.list() {
		if _, ok := s.probed[name]; ok {
			continue
		}
		// The sysfs entry can precede the /dev node: failures are
		// retried on the next round.
		d, cfg, err := probeDisk(filepath.Join(s.devDir, name))
		if err != nil {
			var fatal fatalDiskError
			if errors.As(err, &fatal) {
				return nil, err
			}
			continue
		}
		s.probed[name] = d
		if cfg != nil {
			s.cfg = cfg
		}
	}
	if s.cfg == nil {
		return nil, errors.New("no banger config drive found")
	}
	var have []probedDisk
	for _, d := range s.probed {
		have = append(have, d)
	}
	return matchDisks(wantedDisks(*s.cfg), have)
}

func (s *diskScan) summary() string {
	var parts []string
	for name, d := range s.probed {
		switch {
		case d.Config:
			parts = append(parts, name+"=config")
		case d.UUID != "":
			parts = append(parts, name+"=ext4:"+d.UUID)
		default:
			parts = append(parts, name+"=other")
		}
	}
	slices.Sort(parts)
	if len(parts) == 0 {
		return "none (are the virtio_blk modules loaded?)"
	}
	return strings.Join(parts, " ")
}

// blockDevices lists the virtio disks the kernel knows about.
func blockDevices() []string {
	entries, _ := os.ReadDir("/sys/block")
	var names []string
	for _, e := range entries {
		if strings.HasPrefix(e.Name(), "vd") {
			names = append(names, e.Name())
		}
	}
	return names
}

// probeDisk reads the start of a device: a config drive yields the
// config, an ext4 filesystem its UUID, anything else an empty UUID.
func probeDisk(dev string) (probedDisk, *proto.GuestConfig, error) {
	d := probedDisk{Dev: dev}
	f, err := os.Open(dev)
	if err != nil {
		return d, nil, err
	}
	defer f.Close()
	cfg, err := proto.DecodeConfigDrive(bufio.NewReader(f))
	switch {
	case err == nil:
		d.Config = true
		return d, &cfg, nil
	case !errors.Is(err, proto.ErrNotConfigDrive):
		return d, nil, fatalDiskError{fmt.Errorf("config drive %s: %w", filepath.Base(dev), err)}
	}
	d.UUID, err = ext4UUID(f)
	if errors.Is(err, errNotExt4) {
		err = nil
	}
	return d, nil, err
}
