package vms

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/google/uuid"

	"github.com/banger-dev/banger/internal/agent/client"
	"github.com/banger-dev/banger/internal/agent/proto"
	"github.com/banger-dev/banger/internal/guestssh"
	"github.com/banger-dev/banger/internal/store"
	"github.com/banger-dev/banger/internal/vmm"
)

// Capturing a warm-start template (snapshot point C, ARCHITECTURE.md
// "Warm starts"): a short-lived machine with a VM's device set boots to
// the end of its boot with an identity of its own that no VM has — the
// hostname banger-warm, no address, a throwaway host key — and is then
// saved with its memory in a shared file and its disks kept as they are
// at that instant. Clones get their own identity over the agent.

// warmHostname is a template's hostname, which no clone keeps.
const warmHostname = "banger-warm"

// warmDisk is a template's copy of a VM disk (overlay or work).
func warmDisk(dir, id string) string { return filepath.Join(dir, id+".img") }

// settleTimeout bounds how long a template's system may take to finish
// starting after its agent answered.
const settleTimeout = 3 * time.Minute

// settleScript waits for systemd to finish starting the system. The
// agent answers before init has taken over, when systemctl still says
// "offline" (or cannot connect): asked again until systemd runs.
const settleScript = `command -v systemctl >/dev/null 2>&1 || { echo agent; exit 0; }
i=0
while [ $i -lt 900 ]; do
	s=$(systemctl is-system-running --wait 2>/dev/null)
	case "$s" in running|degraded) echo systemd; exit 0;; esac
	i=$((i+1)); sleep 0.2
done
echo "systemd is $s" >&2; exit 1`

// settleGuest waits until the guest's boot has finished: systemd says the
// system is running (or degraded: a failed unit is the image's, and the
// clones would have it too). An image without systemd settles at
// agent-ready. It returns how far the guest got.
func settleGuest(c *client.Client, ctx context.Context) (string, error) {
	ctx, cancel := context.WithTimeout(ctx, settleTimeout)
	defer cancel()
	var out, errb capped
	st, err := c.Exec(ctx, proto.ExecRequest{Argv: []string{"sh", "-c", settleScript}}, nil, &out, &errb)
	if err != nil {
		return "", fmt.Errorf("wait for the template's boot to finish: %w", err)
	}
	if st.Code != 0 {
		return "", fmt.Errorf("wait for the template's boot to finish: exit %d: %s", st.Code, strings.TrimSpace(errb.b.String()))
	}
	return strings.TrimSpace(out.b.String()), nil
}

// capped keeps the first 4 KiB written to it.
type capped struct{ b bytes.Buffer }

func (c *capped) Write(p []byte) (int, error) {
	if room := 4096 - c.b.Len(); room > 0 {
		c.b.Write(p[:min(len(p), room)])
	}
	return len(p), nil
}

// capture boots a template machine for key and saves it (see above). The
// directory gets its final name only when complete; on any failure
// nothing of it is left.
func (s *Service) capture(ctx context.Context, drv vmm.Driver, key string, plan BootPlan, vm store.VM, vmSpec vmm.Spec) (err error) {
	final := s.warmDir(key)
	// a name of its own: another daemon sharing the cache may be
	// capturing the same key
	tmp := final + "." + randHex(4) + ".tmp"
	if err := os.MkdirAll(tmp, 0o700); err != nil {
		return err
	}
	defer func() {
		if err != nil {
			os.RemoveAll(tmp)
		}
	}()
	id := "warm-" + key[:12]
	rt := filepath.Join(s.Paths.RuntimeDir, id)
	os.RemoveAll(rt)
	defer os.RemoveAll(rt)
	if err := os.MkdirAll(rt, 0o700); err != nil {
		return err
	}
	meta := warmMeta{Format: warmFormat, Key: key, Image: plan.Image.Name, MAC: macFor(id),
		OverlayUUID: uuid.NewString(), WorkUUID: uuid.NewString()}
	if err := makeDiskPair(ctx, warmDisk(tmp, "overlay"), warmDisk(tmp, "work"), vm.DiskBytes, meta.OverlayUUID, meta.WorkUUID); err != nil {
		return err
	}
	priv, pub, err := guestssh.NewKeyPair("root@" + warmHostname)
	if err != nil {
		return err
	}
	_, extra := s.diskSet(vm, plan)
	cfg, err := s.guestConfig(warmHostname, meta.OverlayUUID, meta.WorkUUID, nil, priv, pub, plan, extra)
	if err != nil {
		return err
	}
	cfgDrive := filepath.Join(tmp, "config")
	if err := writeConfig(cfgDrive, cfg); err != nil {
		return err
	}
	spec := vmm.Spec{ID: id, Name: id, Dir: rt, VCPU: vmSpec.VCPU, MemoryMiB: vmSpec.MemoryMiB,
		Kernel: vmSpec.Kernel, KernelELF: vmSpec.KernelELF, Initrd: vmSpec.Initrd,
		Cmdline: vmSpec.Cmdline, ConsoleLog: filepath.Join(tmp, "console.log"),
		Memory: vmm.MemorySpec{File: warmMem(tmp), Shared: true}}
	for _, d := range vmSpec.Disks {
		switch d.ID {
		case "overlay", "work":
			d.Path = warmDisk(tmp, d.ID)
		case "config":
			d.Path = cfgDrive
		}
		spec.Disks = append(spec.Disks, d)
	}
	if vmSpec.Net != nil {
		tap := "bgtw" + key[:11]
		if err := s.Net.CreateTAP(ctx, tap); err != nil {
			return fmt.Errorf("tap: %w", err)
		}
		defer s.Net.DeleteTAP(context.WithoutCancel(ctx), tap)
		spec.Net = &vmm.NetIface{TAP: tap, MAC: meta.MAC}
	}
	m, err := drv.Start(ctx, spec)
	if err != nil {
		return err
	}
	defer m.Kill()
	sn, ok := m.(vmm.Snapshotter)
	if !ok {
		return errors.New("the vmm cannot save a machine's state")
	}
	in := &instance{m: m}
	defer in.closeAgent()
	c, err := in.agentClient(ctx)
	if err != nil {
		return fmt.Errorf("the template's agent: %w", err)
	}
	if meta.Settled, err = s.GuestClock.Settle(c, ctx); err != nil {
		return err
	}
	in.closeAgent() // no session of the template's survives into a clone
	if err := sn.Pause(ctx); err != nil {
		return err
	}
	st, err := sn.SaveState(ctx, tmp)
	if err != nil {
		return err
	}
	// The memory file and the disks are the snapshot: the template must
	// never run again.
	m.Kill()
	select {
	case <-m.Done():
	case <-time.After(10 * time.Second):
		return errors.New("the template vmm did not exit")
	}
	os.Remove(cfgDrive) // the throwaway host key: no clone reads it
	meta.Driver, meta.VMMVersion, meta.CreatedAt = st.Driver, st.VMMVersion, time.Now().UTC()
	b, _ := json.MarshalIndent(meta, "", "  ")
	if err := os.WriteFile(filepath.Join(tmp, "meta.json"), b, 0o600); err != nil {
		return err
	}
	os.RemoveAll(final) // a template that failed a start
	return os.Rename(tmp, final)
}
