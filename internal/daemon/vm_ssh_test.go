package daemon

import (
	"context"
	"errors"
	"strings"
	"sync"
	"testing"
	"time"

	"golang.org/x/crypto/ssh"

	"github.com/banger-dev/banger/internal/api"
	"github.com/banger-dev/banger/internal/config"
	"github.com/banger-dev/banger/internal/guestssh"
	"github.com/banger-dev/banger/internal/store"
	"github.com/banger-dev/banger/internal/vmm"
)

// sshFakes stand in for the sshd probes; nil functions succeed.
type sshFakes struct {
	mu              sync.Mutex
	onProbe, onWait func(addr string, pin []byte) error
	probes, waits   int
}

func (f *sshFakes) probe(_ context.Context, addr string, _ ssh.Signer, pin []byte) error {
	f.mu.Lock()
	fn := f.onProbe
	f.probes++
	f.mu.Unlock()
	if fn == nil {
		return nil
	}
	return fn(addr, pin)
}

func (f *sshFakes) ready(_ context.Context, addr string, _ ssh.Signer, pin []byte) error {
	f.mu.Lock()
	fn := f.onWait
	f.waits++
	f.mu.Unlock()
	if fn == nil {
		return nil
	}
	return fn(addr, pin)
}

func (f *sshFakes) set(probe, wait func(string, []byte) error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.onProbe, f.onWait = probe, wait
}

func (f *sshFakes) counts() (int, int) {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.probes, f.waits
}

// sshImage registers an image recorded with sshd (the seeded one has none).
func (h *harness) sshImage() string {
	h.t.Helper()
	st, err := store.Open(context.Background(), h.paths.Database())
	must(h.t, err)
	defer st.Close()
	im, err := st.GetImage(context.Background(), config.DefaultImageName)
	must(h.t, err)
	im.Name, im.HasSSHD = "with-sshd", true
	must(h.t, st.PutImage(context.Background(), im))
	return im.Name
}

func (h *harness) callSSH(p api.SSHParams) (api.SSHInfo, []string, error) {
	var info api.SSHInfo
	var lines []string
	err := h.client.Call(context.Background(), api.MethodVMSSH, p, &info, func(pr api.Progress) { lines = append(lines, pr.Message) })
	return info, lines, err
}

func refused(addr string, _ []byte) error {
	return &guestssh.ProbeError{Kind: guestssh.ProbeRefused, Addr: addr}
}

func codeOf(err error) string {
	var ae *api.Error
	if errors.As(err, &ae) {
		return ae.Code
	}
	return ""
}

// A VM whose sshd is not up yet (vm run leaves such a VM) is waited for,
// with one progress line, and the probe uses the pin in known_hosts.
func TestSSHWaitsForSSHDThenRemembersIt(t *testing.T) {
	h := newHarness(t)
	var vm api.VM
	must(t, h.call(api.MethodVMCreate, api.CreateParams{Name: "dev", Image: h.sshImage()}, &vm)) // no sshd wait
	var pins [][]byte
	h.ssh.set(func(addr string, pin []byte) error {
		pins = append(pins, pin)
		return refused(addr, pin)
	}, nil)
	info, lines, err := h.callSSH(api.SSHParams{Name: "dev", Wait: true})
	if err != nil {
		t.Fatal(err)
	}
	if len(lines) != 1 || lines[0] != "waiting for dev's sshd…" {
		t.Errorf("progress %q, want one waiting line", lines)
	}
	if info.User != "root" || info.Host != vm.IP || info.HostKeyAlias != "dev.vm" {
		t.Errorf("info %+v", info)
	}
	if p, w := h.ssh.counts(); p != 1 || w != 1 {
		t.Errorf("%d probes %d waits, want 1 and 1", p, w)
	}
	if len(pins) != 1 || !strings.HasPrefix(string(pins[0]), "ssh-ed25519 ") {
		t.Errorf("probe pin %q, want the known_hosts key", pins)
	}
	// Once sshd answered, vm ssh does not pay for another handshake.
	if _, lines, err := h.callSSH(api.SSHParams{Name: "dev", Wait: true}); err != nil || len(lines) != 0 {
		t.Fatalf("second call: %v %q", err, lines)
	}
	if p, w := h.ssh.counts(); p != 1 || w != 1 {
		t.Errorf("second call probed again: %d probes %d waits", p, w)
	}
	// Check probes even so, and reports a real mismatch as one.
	h.ssh.set(func(addr string, _ []byte) error {
		return &guestssh.ProbeError{Kind: guestssh.ProbeKeyMismatch, Addr: addr, Got: "SHA256:a", Want: "SHA256:b", Err: guestssh.ErrHostKeyMismatch}
	}, nil)
	_, _, err = h.callSSH(api.SSHParams{Name: "dev", Check: true})
	if codeOf(err) != api.CodeSSHKeyMismatch || !strings.Contains(err.Error(), "man-in-the-middle") || !strings.Contains(err.Error(), "known_hosts") {
		t.Fatalf("check with a mismatch: %v (code %q)", err, codeOf(err))
	}
}

// Each failure names what failed; only the mismatch speaks of keys.
func TestSSHFailuresSayWhatFailed(t *testing.T) {
	h := newHarness(t)
	must(t, h.call(api.MethodVMCreate, api.CreateParams{Name: "dev", Image: h.sshImage()}, nil))
	h.cfg.BootTimeout.Duration = 3 * time.Second
	for _, c := range []struct {
		kind guestssh.ProbeKind
		code string
		want string
	}{
		{guestssh.ProbeRefused, api.CodeSSHRefused, "refused"},
		{guestssh.ProbeNoAnswer, api.CodeSSHTimeout, "no answer"},
		{guestssh.ProbeAuth, api.CodeSSHAuth, "did not accept banger's key"},
	} {
		h.ssh.set(func(addr string, _ []byte) error {
			return &guestssh.ProbeError{Kind: c.kind, Addr: addr, Err: errors.New("x")}
		}, func(addr string, _ []byte) error {
			return &guestssh.ProbeError{Kind: c.kind, Addr: addr, Err: errors.New("x")}
		})
		_, lines, err := h.callSSH(api.SSHParams{Name: "dev", Wait: true})
		if codeOf(err) != c.code || !strings.Contains(err.Error(), c.want) || strings.Contains(err.Error(), "key mis") || strings.Contains(err.Error(), "host key") {
			t.Errorf("%s: %v (code %q)", c.kind, err, codeOf(err))
		}
		if len(lines) != 1 {
			t.Errorf("%s: progress %q, want one waiting line", c.kind, lines)
		}
	}
	// Without Wait nothing is waited for.
	h.ssh.set(refused, nil)
	_, w0 := h.ssh.counts()
	if _, lines, err := h.callSSH(api.SSHParams{Name: "dev"}); codeOf(err) != api.CodeSSHRefused || len(lines) != 0 {
		t.Errorf("no wait: %v %q", err, lines)
	}
	if _, w := h.ssh.counts(); w != w0 {
		t.Errorf("waited without Wait")
	}
}

// A VM still booting (vm create --no-wait) counts as running but not
// ready: vm ssh waits for the boot, then for sshd.
func TestSSHWaitsForABootingVM(t *testing.T) {
	h := newHarness(t)
	release := make(chan struct{})
	var once sync.Once
	unblock := func() { once.Do(func() { close(release) }) }
	t.Cleanup(unblock)
	h.drv.StartHook = func(ctx context.Context, _ vmm.Spec) error {
		select {
		case <-release:
		case <-ctx.Done():
		}
		return nil
	}
	must(t, h.call(api.MethodVMCreate, api.CreateParams{Name: "slow", Image: h.sshImage(), NoWait: true, WaitSSH: true}, nil))
	if _, _, err := h.callSSH(api.SSHParams{Name: "slow"}); err == nil || !strings.Contains(err.Error(), "still") {
		t.Fatalf("without Wait: %v, want a still-booting conflict", err)
	}
	type res struct {
		lines []string
		err   error
	}
	done := make(chan res, 1)
	go func() {
		_, lines, err := h.callSSH(api.SSHParams{Name: "slow", Wait: true})
		done <- res{lines, err}
	}()
	select {
	case r := <-done:
		t.Fatalf("vm ssh returned before the boot ended: %v", r.err)
	case <-time.After(500 * time.Millisecond):
	}
	unblock()
	select {
	case r := <-done:
		if r.err != nil || len(r.lines) != 1 || !strings.Contains(r.lines[0], "slow's sshd") {
			t.Fatalf("vm ssh after the boot: %v %q", r.err, r.lines)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("vm ssh did not return after the boot")
	}
}
