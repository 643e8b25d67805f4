package vms

import (
	"context"
	"fmt"
	"os"

	"github.com/banger-dev/banger/internal/agent/proto"
	"github.com/banger-dev/banger/internal/progress"
	"github.com/banger-dev/banger/internal/store"
	"github.com/banger-dev/banger/internal/vmdir"
)

// makeChild makes one reserved child whole: its directory, disk copies
// of the fork point's, its own SSH host key (pinned), then a restore of
// the fork point's state with its own TAP, MAC and config drive, the
// clock set, the RNG reseeded and its identity applied (reidentify).
// On success it is running and no longer pending.
func (s *Service) makeChild(ctx context.Context, parent store.VM, kid *store.VM, point forkPoint, r progress.Reporter) error {
	lock := s.lockVM(kid.ID)
	lock.Lock()
	defer lock.Unlock()
	dir := s.dir(kid.ID)
	if err := os.MkdirAll(dir.Path(), 0o700); err != nil {
		return diskFull(dir.Path(), err)
	}
	for i, dst := range dir.Disks() {
		if err := s.copyDisk(dst, vmdir.SnapshotDisks(point.dir)[i]); err != nil {
			return fmt.Errorf("%s: %w", kid.Name, err)
		}
	}
	priv, pub, err := s.newHostKey(*kid)
	if err != nil {
		return fmt.Errorf("%s: host key: %w", kid.Name, err)
	}
	plan, err := s.planFor(ctx, *kid)
	if err != nil {
		return err
	}
	o := bootOpts{restore: point.state, memory: point.memory, reseed: true, continued: func(in *instance) error {
		return s.reidentify(ctx, parent.MAC, *kid, in, priv, pub, r)
	}}
	if err := s.bootWith(ctx, kid, plan, o, r); err != nil {
		return fmt.Errorf("%s: %w", kid.Name, err)
	}
	s.markStarted(kid.ID, "fork of "+parent.Name)
	if err := s.Store.ForkDone(ctx, kid.ID); err != nil {
		return fmt.Errorf("%s: %w", kid.Name, err)
	}
	progress.Stage(r, "fork", fmt.Sprintf("%s running at %s", kid.Name, kid.IP))
	return nil
}

// reidentify gives a restored guest (a fork's child, a warm clone) its
// identity: the NIC with oldMAC (the parent's or template's) gets the
// VM's MAC and address, and the hostname, SSH host key (the one just
// pinned), machine-id and resolver become the VM's. An agent that cannot
// do it fails the VM: a second VM with the parent's address and keys
// must not run.
func (s *Service) reidentify(ctx context.Context, oldMAC string, kid store.VM, in *instance, priv, pub []byte, r progress.Reporter) error {
	ctx, cancel := context.WithTimeout(ctx, guestOpTimeout)
	defer cancel()
	c, err := in.agentClient(ctx)
	if err != nil {
		return err
	}
	p := proto.ReidentifyParams{
		Hostname: kid.Name, OldMAC: oldMAC, Net: s.guestNet(kid), MachineID: randHex(16),
		SSHHostKeys: map[string]string{"ssh_host_ed25519_key": string(priv), "ssh_host_ed25519_key.pub": string(pub)},
	}
	res, err := s.GuestClock.Reidentify(c, ctx, p)
	if err != nil {
		return fmt.Errorf("give the VM its identity (hostname, address, host key): %w (the guest agent may be older than this banger: rebuild the VM's initramfs by starting a new VM)", err)
	}
	progress.Stage(r, "identity", fmt.Sprintf("%s: own hostname, address %s, MAC, host key and machine-id applied (sshd %s)", kid.Name, kid.IP, res.SSHD))
	return nil
}

// dropChild removes a child of a failed fork: its VMM, TAP, files, pin
// and row (and with it the pending mark).
func (s *Service) dropChild(ctx context.Context, kid store.VM) {
	lock := s.lockVM(kid.ID)
	lock.Lock()
	defer lock.Unlock()
	s.halt(ctx, kid, s.instance(kid.ID))
	if err := s.discard(ctx, kid); err != nil {
		s.Log.Warn("fork: remove child", "vm", kid.Name, "err", err)
	}
}
