package initramfs

import (
	"bytes"
	"context"
	"debug/elf"
	"encoding/binary"
	"io"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/cavaliergopher/cpio"
)

// fakeExecutable writes a minimal ELF64 executable; with interp it gets a
// PT_INTERP program header like a dynamically linked binary.
func fakeExecutable(t *testing.T, path string, interp bool) []byte {
	t.Helper()
	var b bytes.Buffer
	hdr := elf.Header64{Type: uint16(elf.ET_EXEC), Machine: uint16(elf.EM_X86_64), Version: 1, Ehsize: 64, Phentsize: 56}
	copy(hdr.Ident[:], []byte{0x7f, 'E', 'L', 'F', byte(elf.ELFCLASS64), byte(elf.ELFDATA2LSB), 1})
	if interp {
		hdr.Phoff, hdr.Phnum = 64, 1
	}
	binary.Write(&b, binary.LittleEndian, hdr)
	if interp {
		binary.Write(&b, binary.LittleEndian, elf.Prog64{Type: uint32(elf.PT_INTERP), Off: 120, Filesz: 28, Memsz: 28, Align: 1})
		b.WriteString("/lib64/ld-linux-x86-64.so.2\x00")
	}
	b.WriteString("payload of odd length") // not a multiple of 4: exercises padding
	if err := os.WriteFile(path, b.Bytes(), 0o755); err != nil {
		t.Fatal(err)
	}
	return b.Bytes()
}

func modulesArchive(t *testing.T, path string) {
	t.Helper()
	var b bytes.Buffer
	cw := cpio.NewWriter(&b)
	for _, d := range []string{"lib", "lib/modules", "lib/modules/banger"} {
		cw.WriteHeader(&cpio.Header{Name: d, Mode: cpio.TypeDir | 0o755, ModTime: time.Unix(1, 0)})
	}
	body := "virtio.ko\n"
	cw.WriteHeader(&cpio.Header{Name: "lib/modules/banger/load.order", Mode: cpio.TypeReg | 0o644, Size: int64(len(body))})
	io.WriteString(cw, body)
	if err := cw.Close(); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(path, b.Bytes(), 0o644); err != nil {
		t.Fatal(err)
	}
}

type newcEntry struct {
	name                          string
	mode, nlink, rdevMaj, rdevMin uint32
	body                          []byte
	archive                       int
}

// parseNewc reads concatenated newc archives the way the kernel does:
// header by header, 4-byte aligned, skipping zero padding between archives.
func parseNewc(t *testing.T, data []byte) []newcEntry {
	t.Helper()
	var out []newcEntry
	archive, off := 0, 0
	align := func() { off = (off + 3) &^ 3 }
	for off < len(data) {
		if data[off] == 0 {
			off++
			continue
		}
		if off%4 != 0 || string(data[off:off+6]) != "070701" {
			t.Fatalf("bad header at %d", off)
		}
		f := func(i int) uint32 {
			v, err := strconv.ParseUint(string(data[off+6+8*i:off+14+8*i]), 16, 32)
			if err != nil {
				t.Fatal(err)
			}
			return uint32(v)
		}
		e := newcEntry{mode: f(1), nlink: f(4), rdevMaj: f(9), rdevMin: f(10), archive: archive}
		size, namesize := int(f(6)), int(f(11))
		e.name = string(data[off+110 : off+110+namesize-1])
		off += 110 + namesize
		align()
		e.body = data[off : off+size]
		off += size
		align()
		if e.name == "TRAILER!!!" {
			archive++
			continue
		}
		out = append(out, e)
	}
	if archive != 2 {
		t.Fatalf("found %d archives, want 2", archive)
	}
	return out
}

func TestBuild(t *testing.T) {
	d := t.TempDir()
	agent := filepath.Join(d, "banger-agent")
	agentBytes := fakeExecutable(t, agent, false)
	mods := filepath.Join(d, "modules.cpio")
	modulesArchive(t, mods)
	out := filepath.Join(d, "initrd")
	if err := BuildFile(context.Background(), out, agent, mods); err != nil {
		t.Fatal(err)
	}
	data, err := os.ReadFile(out)
	if err != nil {
		t.Fatal(err)
	}
	byName := map[string]newcEntry{}
	for _, e := range parseNewc(t, data) {
		byName[e.name] = e
	}
	for _, dir := range Dirs {
		if e := byName[dir]; e.mode != modeDir|0o755 || e.archive != 0 {
			t.Errorf("%s: mode %o archive %d", dir, e.mode, e.archive)
		}
	}
	if c := byName["dev/console"]; c.mode != modeChr|0o600 || c.rdevMaj != 5 || c.rdevMin != 1 {
		t.Errorf("console = %+v", c)
	}
	if i := byName["init"]; i.mode != modeReg|0o755 || !bytes.Equal(i.body, agentBytes) || i.nlink != 1 {
		t.Errorf("init: mode %o nlink %d, %d bytes", i.mode, i.nlink, len(i.body))
	}
	if o := byName["lib/modules/banger/load.order"]; string(o.body) != "virtio.ko\n" || o.archive != 1 {
		t.Errorf("load.order = %q in archive %d", o.body, o.archive)
	}
	// A stock cpio reader agrees on the first archive.
	cr := cpio.NewReader(bytes.NewReader(data))
	var names []string
	for {
		h, err := cr.Next()
		if err == io.EOF {
			break
		}
		if err != nil {
			t.Fatal(err)
		}
		names = append(names, h.Name)
	}
	if got := strings.Join(names, " "); got != strings.Join(Dirs, " ")+" dev/console init" {
		t.Errorf("first archive = %s", got)
	}
	// Same inputs, same bytes.
	var again bytes.Buffer
	if err := Build(&again, agent, mods); err != nil || !bytes.Equal(again.Bytes(), data) {
		t.Errorf("rebuild differs (err %v)", err)
	}
	if st, _ := os.Stat(out); st.Mode().Perm() != 0o644 {
		t.Errorf("mode %v", st.Mode())
	}
}

func TestBuildRejects(t *testing.T) {
	d := t.TempDir()
	mods := filepath.Join(d, "modules.cpio")
	modulesArchive(t, mods)
	dyn := filepath.Join(d, "dynamic")
	fakeExecutable(t, dyn, true)
	out := filepath.Join(d, "initrd")
	if err := BuildFile(context.Background(), out, dyn, mods); err == nil || !strings.Contains(err.Error(), "dynamically linked") {
		t.Errorf("dynamic agent: %v", err)
	}
	static := filepath.Join(d, "static")
	fakeExecutable(t, static, false)
	if err := BuildFile(context.Background(), out, static, static); err == nil || !strings.Contains(err.Error(), "not a newc") {
		t.Errorf("bad modules archive: %v", err)
	}
	if err := BuildFile(context.Background(), out, mods, mods); err == nil {
		t.Error("non-ELF agent accepted")
	}
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if err := BuildFile(ctx, out, static, mods); err == nil {
		t.Error("cancelled build succeeded")
	}
	entries, _ := os.ReadDir(d)
	for _, e := range entries {
		if e.Name() == "initrd" || strings.Contains(e.Name(), ".tmp-") {
			t.Errorf("failed builds left %s", e.Name())
		}
	}
}
