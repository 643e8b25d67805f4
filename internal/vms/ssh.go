package vms

import (
	"context"
	"errors"
	"fmt"
	"net"
	"time"

	"golang.org/x/crypto/ssh"

	"github.com/banger-dev/banger/internal/api"
	"github.com/banger-dev/banger/internal/guestssh"
	"github.com/banger-dev/banger/internal/progress"
	"github.com/banger-dev/banger/internal/store"
)

// SSH tells the CLI how to run OpenSSH against a VM, once sshd
// answers with the pinned host key. With Wait, a VM still booting and an
// sshd not up yet are waited for (bounded by boot_timeout, one progress
// line); a failure says what the probe saw. The probe is the same one
// OpenSSH will face: banger's user key against the pin in known_hosts.
// Once sshd has answered, later calls do not probe again unless Check.
func (s *Service) SSH(ctx context.Context, p api.SSHParams, r progress.Reporter) (api.SSHInfo, error) {
	vm, err := s.Resolve(ctx, p.Name)
	if err != nil {
		return api.SSHInfo{}, err
	}
	if im, err := s.Store.GetImage(ctx, vm.Image); err == nil {
		if err := sshdMissing(im, vm); err != nil {
			return api.SSHInfo{}, err
		}
	}
	signer, _, err := s.Keys.EnsureUserKey()
	if err != nil {
		return api.SSHInfo{}, err
	}
	limit := s.Config.BootTimeout.Duration
	if limit <= 0 {
		limit = 3 * time.Minute
	}
	wctx, cancel := context.WithTimeout(ctx, limit)
	defer cancel()
	announced := false
	announce := func() {
		if !announced {
			announced = true
			progress.Stage(r, "ssh", fmt.Sprintf("waiting for %s's sshd…", vm.Name))
		}
	}
	in, err := s.sshInstance(wctx, &vm, p.Wait && !p.Check, announce, limit)
	if err != nil {
		return api.SSHInfo{}, err
	}
	if p.Check || !in.sshOK.Load() {
		err := s.probeSSH(wctx, vm, in, signer, p.Wait && !p.Check, announce)
		in.sshOK.Store(err == nil)
		if err != nil {
			return api.SSHInfo{}, err
		}
	}
	return api.SSHInfo{
		VM: s.View(vm), User: "root", Host: vm.IP, HostKeyAlias: guestssh.HostAlias(vm.Name),
		IdentityFile: s.Keys.IdentityFile(), KnownHostsFile: s.Keys.KnownHostsFile(),
	}, nil
}

// sshInstance returns the running instance of vm, waiting (when wait)
// while the VM is being created or started.
func (s *Service) sshInstance(ctx context.Context, vm *store.VM, wait bool, announce func(), limit time.Duration) (*instance, error) {
	waited := false
	for {
		in := s.instance(vm.ID)
		booting := vm.State == store.StateCreating || vm.State == store.StateStarting
		switch {
		case in != nil && vm.State == store.StateRunning:
			return in, nil
		case booting && !wait:
			return nil, api.Conflictf("vm %s is still %s: its sshd is not up yet", vm.Name, vm.State)
		case !booting && waited && vm.LastError != "":
			return nil, api.Conflictf("vm %s did not boot: %s", vm.Name, vm.LastError)
		case !booting:
			return nil, api.Conflictf("vm %s is %s: start it with `banger vm start %s`", vm.Name, vm.State, vm.Name)
		}
		announce()
		waited = true
		select {
		case <-ctx.Done():
			return nil, &api.Error{Code: api.CodeSSHTimeout,
				Message: fmt.Sprintf("vm %s is still %s after %s (boot_timeout): its sshd is not up", vm.Name, vm.State, limit)}
		case <-time.After(200 * time.Millisecond):
		}
		v, err := s.Store.GetVM(ctx, vm.ID)
		if err != nil {
			if errors.Is(err, store.ErrNotFound) {
				return nil, api.NotFoundf("vm %s was deleted while waiting for its sshd", vm.Name)
			}
			return nil, err
		}
		*vm = v
	}
}

// probeSSH checks sshd once and, when wait and the failure may pass
// (refused, dropped, no answer), keeps probing until ctx ends or the VMM
// exits.
func (s *Service) probeSSH(ctx context.Context, vm store.VM, in *instance, signer ssh.Signer, wait bool, announce func()) error {
	pin, err := s.Keys.Pinned(vm.Name)
	if err != nil {
		return api.Conflictf("vm %s: %v: banger cannot check its host key (delete and recreate the VM)", vm.Name, err)
	}
	addr := net.JoinHostPort(vm.IP, "22")
	err = s.SSHProbe(ctx, addr, signer, pin)
	var pe *guestssh.ProbeError
	if err != nil && wait && errors.As(err, &pe) && pe.Retryable() {
		announce()
		wctx, cancel := context.WithCancel(ctx)
		defer cancel()
		errc := make(chan error, 1)
		go func() { errc <- s.SSHReady(wctx, addr, signer, pin) }()
		select {
		case err = <-errc:
		case <-in.m.Done():
			return api.Conflictf("vm %s stopped while waiting for its sshd", vm.Name)
		}
	}
	if err == nil {
		return nil
	}
	if !errors.As(err, &pe) {
		return err
	}
	code := map[guestssh.ProbeKind]string{
		guestssh.ProbeRefused: api.CodeSSHRefused, guestssh.ProbeNoAnswer: api.CodeSSHTimeout,
		guestssh.ProbeClosed: api.CodeSSHClosed, guestssh.ProbeAuth: api.CodeSSHAuth,
		guestssh.ProbeKeyMismatch: api.CodeSSHKeyMismatch,
	}[pe.Kind]
	msg := fmt.Sprintf("vm %s: %v", vm.Name, err)
	if pe.Kind == guestssh.ProbeKeyMismatch {
		msg += fmt.Sprintf(" (the pin is %s's line in %s)", guestssh.HostAlias(vm.Name), s.Keys.KnownHostsFile())
	}
	return &api.Error{Code: code, Message: msg}
}
