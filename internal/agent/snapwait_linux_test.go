package agent

import (
	"bufio"
	"bytes"
	"io"
	"log/slog"
	"net"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/vishvananda/netlink"

	"github.com/banger-dev/banger/internal/agent/proto"
)

// portReader behaves like a virtio-serial port: EOF while no host is
// connected, then whatever the host writes, in the chunks it writes.
type portReader struct{ chunks []string }

func (p *portReader) Read(b []byte) (int, error) {
	if len(p.chunks) == 0 {
		return 0, io.ErrClosedPipe
	}
	c := p.chunks[0]
	if c == "" {
		p.chunks = p.chunks[1:]
		return 0, io.EOF
	}
	n := copy(b, c)
	if n == len(c) {
		p.chunks = p.chunks[1:]
	} else {
		p.chunks[0] = c[n:]
	}
	return n, nil
}

func TestAwaitContinueSkipsNoiseAndBadMessages(t *testing.T) {
	good := proto.Continue{Time: time.Unix(1796306434, 5), Entropy: bytes.Repeat([]byte{7}, 64)}
	var logs bytes.Buffer
	log := slog.New(slog.NewTextHandler(&logs, nil))
	line := string(good.Line())
	p := &portReader{chunks: []string{
		"", "", // no host yet
		"BANGER-HELLO abc\n",              // a host that does not know: skipped
		proto.ContinuePrefix + "2 1 ab\n", // a bad continue: logged, skipped
		line[:10], line[10:],              // split across reads
	}}
	idles := 0
	c, err := awaitContinue(bufio.NewReader(p), log, func() { idles++ })
	if err != nil {
		t.Fatalf("%v\n%s", err, logs.String())
	}
	if !c.Time.Equal(good.Time) || !bytes.Equal(c.Entropy, good.Entropy) {
		t.Errorf("got %+v", c)
	}
	if !strings.Contains(logs.String(), "ignoring a bad continue message") {
		t.Errorf("the bad message was not logged:\n%s", logs.String())
	}
	if idles < 2 {
		t.Errorf("idles = %d", idles)
	}
}

func TestAwaitContinueReportsADeadPort(t *testing.T) {
	_, err := awaitContinue(bufio.NewReader(&portReader{}), slog.New(slog.NewTextHandler(io.Discard, nil)), func() {})
	if err == nil {
		t.Fatal("no error from a closed port")
	}
}

func TestModulesNamedKeepsListOrder(t *testing.T) {
	order := filepath.Join(t.TempDir(), "modules.order")
	os.WriteFile(order, []byte("virtio_blk.ko.xz\nvirtio.ko\nvirtio_ring.ko\nnet/virtio_net.ko\nvirtio_mmio.ko.zst\nvirtio_console.ko\n"), 0o600)
	got := modulesNamed(order, channelModules)
	if want := []string{"virtio.ko", "virtio_ring.ko", "virtio_mmio.ko.zst", "virtio_console.ko"}; !slices.Equal(got, want) {
		t.Errorf("got %q, want %q", got, want)
	}
	if modulesNamed(filepath.Join(t.TempDir(), "none"), channelModules) != nil {
		t.Error("a missing list gave modules")
	}
}

func TestAdoptCandidateIsTheOnlyNIC(t *testing.T) {
	mac, _ := net.ParseMAC("52:54:00:be:0c:01")
	lo := &netlink.Device{LinkAttrs: netlink.LinkAttrs{Name: "lo", HardwareAddr: make(net.HardwareAddr, 6)}}
	eth0 := &netlink.Device{LinkAttrs: netlink.LinkAttrs{Name: "eth0", HardwareAddr: mac}}
	eth1 := &netlink.Device{LinkAttrs: netlink.LinkAttrs{Name: "eth1", HardwareAddr: mac}}
	tun := &netlink.Tuntap{LinkAttrs: netlink.LinkAttrs{Name: "tun0"}}
	if got := adoptCandidate([]netlink.Link{lo, eth0, tun}); got != eth0 {
		t.Errorf("got %v", got)
	}
	if got := adoptCandidate([]netlink.Link{lo, eth0, eth1}); got != nil {
		t.Errorf("two NICs: got %v", got.Attrs().Name)
	}
	if got := adoptCandidate([]netlink.Link{lo}); got != nil {
		t.Errorf("no NIC: got %v", got.Attrs().Name)
	}
}

func TestModuleOf(t *testing.T) {
	for entry, want := range map[string]string{
		"kernel/drivers/block/virtio_blk.ko":          "virtio_blk",
		"kernel/drivers/char/hw_random/virtio-rng.ko": "virtio_rng",
		"kernel/fs/ext4/ext4.ko.xz":                   "ext4",
		"overlay.ko":                                  "overlay",
	} {
		if got := moduleOf(entry); got != want {
			t.Errorf("moduleOf(%q) = %q, want %q", entry, got, want)
		}
	}
}
