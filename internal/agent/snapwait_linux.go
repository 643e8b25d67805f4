package agent

import (
	"bufio"
	"errors"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"time"

	"github.com/vishvananda/netlink"
	"golang.org/x/sys/unix"

	"github.com/banger-dev/banger/internal/agent/proto"
)

// The warm-start snapshot point (see proto.SnapWaitArg): init stops here,
// before any per-VM device is probed, until the host says continue.

// channelModules are the modules the agent port needs, in load order.
var channelModules = []string{"virtio_ring", "virtio", "virtio_mmio", "virtio_console"}

// perVMDeviceModules bind devices whose identity differs between the
// template and a clone: the disks (a clone's are its own, with other
// sizes) and a vsock (its CID). They load after the continue message;
// every other module (filesystems, overlay, the RNG, the NIC's driver,
// whose MAC the clone adopts anyway) loads before the snapshot point, so
// a warm clone does not pay for them (~0.3–1.5 s under TCG).
var perVMDeviceModules = []string{"virtio_blk", "vmw_vsock_virtio_transport"}

// snapWaitRequested reports whether the kernel command line asks for the
// snapshot point. A VM restored from the snapshot has the template's
// command line, so this is also true in every warm clone.
func snapWaitRequested() bool {
	b, _ := os.ReadFile("/proc/cmdline")
	return proto.HasSnapWait(string(b))
}

// snapWait loads the channel's modules, opens the agent port, marks the
// snapshot point on the console and waits for the continue message;
// then it sets the clock and reseeds the kernel's CRNG from it.
func (b *boot) snapWait() {
	start := time.Now()
	for _, m := range modulesNamed(proto.ModulesOrder, channelModules) {
		if err := loadModule(filepath.Join(proto.ModulesDir, m)); err != nil {
			b.log.Warn("snapwait: load module", "module", m, "err", err)
		}
	}
	loadModules(b.log, perVMDeviceModules...)
	var port *os.File
	for wait := 5 * time.Millisecond; ; wait = min(2*wait, openRetryMax) {
		p, err := openSerialPort()
		if err == nil {
			port = p.(*os.File)
			break
		}
		time.Sleep(wait)
	}
	defer port.Close()
	b.log.Info(proto.SnapPointMarker+": waiting for the host's continue message", "took", time.Since(start).Round(time.Millisecond))
	c, err := awaitContinue(bufio.NewReader(port), b.log, func() { time.Sleep(5 * time.Millisecond) })
	if err != nil {
		b.log.Error("snapwait: no continue message; booting on", "err", err)
		return
	}
	applyContinue(c, b.log)
	b.adoptMAC = true
}

// awaitContinue reads the port until a valid continue line arrives. A
// port without a host reads EOF: wait and read again. Other lines are
// logged and skipped.
func awaitContinue(br *bufio.Reader, log *slog.Logger, idle func()) (proto.Continue, error) {
	for {
		rest, err := proto.ScanForLine(br, proto.ContinuePrefix)
		if errors.Is(err, io.EOF) {
			idle()
			continue
		}
		if err != nil {
			return proto.Continue{}, err
		}
		c, err := proto.ParseContinue(rest)
		if err != nil {
			log.Warn("snapwait: ignoring a bad continue message", "err", err)
			continue
		}
		return c, nil
	}
}

// applyContinue sets the wall clock and reseeds; failures are logged:
// the VM still boots (with a stale clock or the template's CRNG state,
// which the kernel reseeds by itself within a minute).
func applyContinue(c proto.Continue, log *slog.Logger) {
	ts := unix.NsecToTimespec(c.Time.UnixNano())
	if err := setClock(&ts); err != nil {
		log.Error("snapwait", "err", err)
	}
	if err := reseed("/dev/urandom", c.Entropy); err != nil {
		log.Error("snapwait", "err", err)
	}
	log.Info("snapwait: continuing the boot", "clock", c.Time.UTC().Format(time.RFC3339Nano))
}

// modulesNamed is the entries of the module list at order whose module
// name is one of names, in the list's order.
func modulesNamed(order string, names []string) []string {
	data, err := os.ReadFile(order)
	if err != nil {
		return nil
	}
	var out []string
	for _, line := range strings.Split(string(data), "\n") {
		entry := strings.TrimSpace(line)
		if slices.Contains(names, moduleOf(entry)) {
			out = append(out, entry)
		}
	}
	return out
}

// adoptCandidate is the NIC a restored VM must give its configured MAC:
// the only ethernet device. (The template had the same device set, so
// there is exactly one; with more, or none yet, nothing is guessed.)
func adoptCandidate(links []netlink.Link) netlink.Link {
	var eth []netlink.Link
	for _, l := range links {
		a := l.Attrs()
		if l.Type() == "device" && a.Name != "lo" && len(a.HardwareAddr) == 6 {
			eth = append(eth, l)
		}
	}
	if len(eth) != 1 {
		return nil
	}
	return eth[0]
}
