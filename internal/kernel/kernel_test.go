package kernel

import (
	"bytes"
	"context"
	"debug/elf"
	"encoding/binary"
	"encoding/json"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"reflect"
	"strings"
	"testing"

	"github.com/banger-dev/banger/internal/agent/proto"
	"github.com/banger-dev/banger/internal/image"
	"github.com/cavaliergopher/cpio"
)

// fakeModule writes a minimal ELF64 relocatable object whose only content
// is a .modinfo section, which is all the importer reads from a .ko.
func fakeModule(t *testing.T, path string, modinfo ...string) {
	t.Helper()
	info := []byte(strings.Join(modinfo, "\x00") + "\x00")
	shstr := []byte("\x00.modinfo\x00.shstrtab\x00")
	const ehsize, shsize = 64, 64
	infoOff := uint64(ehsize)
	strOff := infoOff + uint64(len(info))
	shOff := (strOff + uint64(len(shstr)) + 7) &^ 7
	var b bytes.Buffer
	hdr := elf.Header64{
		Type: uint16(elf.ET_REL), Machine: uint16(elf.EM_X86_64), Version: 1,
		Shoff: shOff, Ehsize: ehsize, Shentsize: shsize, Shnum: 3, Shstrndx: 2,
	}
	copy(hdr.Ident[:], []byte{0x7f, 'E', 'L', 'F', byte(elf.ELFCLASS64), byte(elf.ELFDATA2LSB), 1})
	binary.Write(&b, binary.LittleEndian, hdr)
	b.Write(info)
	b.Write(shstr)
	b.Write(make([]byte, int(shOff)-b.Len()))
	for _, s := range []elf.Section64{
		{},
		{Name: 1, Type: uint32(elf.SHT_PROGBITS), Flags: uint64(elf.SHF_ALLOC), Off: infoOff, Size: uint64(len(info)), Addralign: 1},
		{Name: 10, Type: uint32(elf.SHT_STRTAB), Off: strOff, Size: uint64(len(shstr)), Addralign: 1},
	} {
		binary.Write(&b, binary.LittleEndian, s)
	}
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(path, b.Bytes(), 0o644); err != nil {
		t.Fatal(err)
	}
}

func TestModinfoDepends(t *testing.T) {
	p := filepath.Join(t.TempDir(), "virtio_net.ko")
	fakeModule(t, p, "license=GPL", "depends=virtio_ring,virtio,net-failover", "name=virtio_net")
	got, err := modinfoDepends(p)
	if err != nil {
		t.Fatal(err)
	}
	if want := []string{"virtio_ring", "virtio", "net_failover"}; !reflect.DeepEqual(got, want) {
		t.Errorf("depends = %q, want %q", got, want)
	}
	q := filepath.Join(t.TempDir(), "overlay.ko")
	fakeModule(t, q, "depends=", "name=overlay")
	if got, err := modinfoDepends(q); err != nil || len(got) != 0 {
		t.Errorf("empty depends = %q, %v", got, err)
	}
	os.WriteFile(q, []byte("not elf"), 0o644)
	if _, err := modinfoDepends(q); err == nil {
		t.Error("non-ELF accepted")
	}
}

func fakeDeps(graph map[string][]string) func(string) ([]string, error) {
	return func(path string) ([]string, error) { return graph[path], nil }
}

func avail(names ...string) map[string]string {
	m := map[string]string{}
	for _, n := range names {
		m[n] = n // the fake deps function is keyed by "path" = name
	}
	return m
}

func TestResolveModulesOrder(t *testing.T) {
	graph := map[string][]string{
		"virtio_mmio":    {"virtio", "virtio_ring"},
		"virtio_ring":    {"virtio"},
		"virtio_blk":     {"virtio", "virtio_ring"},
		"virtio_net":     {"virtio_ring", "virtio", "net_failover"},
		"net_failover":   {"failover"},
		"overlay":        nil,
		"virtio_console": {"virtio", "virtio_ring"},
		"virtio_rng":     {"virtio", "virtio_ring", "crc32c_generic"}, // builtin dep
	}
	available := avail("virtio", "virtio_ring", "virtio_mmio", "virtio_blk", "virtio_net", "net_failover", "failover", "overlay", "virtio_console", "virtio_rng")
	builtin := map[string]bool{"ext4": true, "crc32c_generic": true}
	res, err := resolveModules(BootModules, available, builtin, fakeDeps(graph))
	if err != nil {
		t.Fatal(err)
	}
	want := []string{"virtio", "virtio_ring", "virtio_mmio", "virtio_blk", "failover", "net_failover", "virtio_net", "virtio_console", "virtio_rng", "overlay"}
	if !reflect.DeepEqual(res.Order, want) {
		t.Errorf("order = %q\nwant    %q", res.Order, want)
	}
	if !reflect.DeepEqual(res.Builtin, []string{"ext4"}) || !reflect.DeepEqual(res.Missing, []string{"vmw_vsock_virtio_transport"}) {
		t.Errorf("builtin %q missing %q", res.Builtin, res.Missing)
	}
	// Every module comes after all its dependencies.
	pos := map[string]int{}
	for i, n := range res.Order {
		pos[n] = i
	}
	for m, ds := range graph {
		for _, d := range ds {
			if !builtin[d] && pos[d] >= pos[m] {
				t.Errorf("%s loaded before its dependency %s", m, d)
			}
		}
	}
}

func TestResolveModulesErrors(t *testing.T) {
	want := []BootModule{{Name: "a"}}
	if _, err := resolveModules(want, avail("a", "b"), nil, fakeDeps(map[string][]string{"a": {"b"}, "b": {"a"}})); err == nil || !strings.Contains(err.Error(), "cycle") {
		t.Errorf("cycle: %v", err)
	}
	if _, err := resolveModules(want, avail("a"), nil, fakeDeps(map[string][]string{"a": {"gone"}})); err == nil || !strings.Contains(err.Error(), "gone") {
		t.Errorf("missing dependency: %v", err)
	}
	if _, err := resolveModules([]BootModule{{Name: "virtio_blk"}}, avail(), nil, fakeDeps(nil)); err == nil {
		t.Error("missing required module accepted")
	}
}

func TestIndexModules(t *testing.T) {
	d := t.TempDir()
	fakeModule(t, filepath.Join(d, "kernel/drivers/char/hw_random/virtio-rng.ko"), "name=virtio_rng")
	os.WriteFile(filepath.Join(d, "modules.order"), nil, 0o644)
	idx, err := indexModules(d)
	if err != nil || len(idx) != 1 || !strings.HasSuffix(idx["virtio_rng"], "virtio-rng.ko") {
		t.Fatalf("index = %v, %v", idx, err)
	}
	fakeModule(t, filepath.Join(d, "kernel/other/virtio_rng.ko"), "name=virtio_rng")
	if _, err := indexModules(d); err == nil {
		t.Error("duplicate module accepted")
	}
	z := t.TempDir()
	os.WriteFile(filepath.Join(z, "virtio_blk.ko.xz"), nil, 0o644)
	if _, err := indexModules(z); err == nil || !strings.Contains(err.Error(), "compressed") {
		t.Errorf("compressed: %v", err)
	}
}

func TestParseDepends(t *testing.T) {
	out := "linux-image-cloud-amd64\n  Depends: linux-image-6.1.0-56-cloud-amd64\n  Recommends: <firmware>\n"
	if got := parseDepends(out); got != "linux-image-6.1.0-56-cloud-amd64" {
		t.Errorf("got %q", got)
	}
	if got := parseDepends("x\n  Depends: libc6\n"); got != "" {
		t.Errorf("got %q", got)
	}
}

// cpioEntries lists a newc archive's entries and file contents.
func cpioEntries(t *testing.T, r io.Reader) (names []string, bodies map[string]string) {
	t.Helper()
	bodies = map[string]string{}
	cr := cpio.NewReader(r)
	for {
		h, err := cr.Next()
		if err == io.EOF {
			return names, bodies
		}
		if err != nil {
			t.Fatal(err)
		}
		b, _ := io.ReadAll(cr)
		names = append(names, h.Name)
		bodies[h.Name] = string(b)
	}
}

// fakeKernelDeb builds a small kernel .deb with dpkg-deb, so the whole
// import runs offline.
func fakeKernelDeb(t *testing.T) string {
	t.Helper()
	return fakeKernelDebWith(t, nil)
}

// fakeKernelDebWith is fakeKernelDeb with a change to the package tree
// (root, module directory) before it is built.
func fakeKernelDebWith(t *testing.T, tweak func(root, mods string)) string {
	t.Helper()
	root := filepath.Join(t.TempDir(), "pkg")
	rel := "6.1.0-99-cloud-amd64"
	mods := filepath.Join(root, "lib/modules", rel)
	files := map[string]string{
		"DEBIAN/control":                          "Package: linux-image-" + rel + "\nVersion: 6.1.999-1\nArchitecture: amd64\nMaintainer: test <t@example.org>\nDescription: test kernel\n",
		"boot/vmlinuz-" + rel:                     "BZIMAGE",
		"boot/config-" + rel:                      "CONFIG_EXT4_FS=y\n",
		"lib/modules/" + rel + "/modules.builtin": "kernel/fs/ext4/ext4.ko\nkernel/fs/jbd2/jbd2.ko\n",
	}
	for n, c := range files {
		p := filepath.Join(root, n)
		os.MkdirAll(filepath.Dir(p), 0o755)
		if err := os.WriteFile(p, []byte(c), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	for rel, deps := range map[string]string{
		"drivers/virtio/virtio.ko":                           "",
		"drivers/virtio/virtio_ring.ko":                      "virtio",
		"drivers/virtio/virtio_mmio.ko":                      "virtio,virtio_ring",
		"drivers/block/virtio_blk.ko":                        "virtio,virtio_ring",
		"drivers/net/virtio_net.ko":                          "virtio_ring,virtio,net_failover",
		"drivers/net/net_failover.ko":                        "failover",
		"net/core/failover.ko":                               "",
		"drivers/char/virtio_console.ko":                     "virtio,virtio_ring",
		"drivers/char/hw_random/virtio-rng.ko":               "virtio,virtio_ring",
		"fs/overlayfs/overlay.ko":                            "",
		"net/vmw_vsock/vsock.ko":                             "",
		"net/vmw_vsock/vmw_vsock_virtio_transport_common.ko": "vsock,virtio,virtio_ring",
		"net/vmw_vsock/vmw_vsock_virtio_transport.ko":        "virtio,vmw_vsock_virtio_transport_common,virtio_ring,vsock",
		"fs/fat/vfat.ko":                                     "fat", // unrelated, must not be included
	} {
		// The alias shows in depmod's modules.alias (modules.dep comes from
		// symbols, which these fakes have none of).
		fakeModule(t, filepath.Join(mods, "kernel", rel), "depends="+deps, "alias=fake:"+moduleName(rel))
	}
	if tweak != nil {
		tweak(root, mods)
	}
	deb := filepath.Join(t.TempDir(), "kernel.deb")
	if out, err := exec.Command("dpkg-deb", "--root-owner-group", "-Znone", "-b", root, deb).CombinedOutput(); err != nil {
		t.Fatalf("dpkg-deb: %v\n%s", err, out)
	}
	return deb
}

func TestImportFromDeb(t *testing.T) {
	deb := fakeKernelDeb(t)
	dir := filepath.Join(t.TempDir(), "kernels", "k1")
	info, err := ImportDebianCloud(context.Background(), ImportOptions{Dir: dir, DebFile: deb})
	if err != nil {
		t.Fatal(err)
	}
	wantMods := []string{"virtio.ko", "virtio_ring.ko", "virtio_mmio.ko", "virtio_blk.ko", "failover.ko", "net_failover.ko", "virtio_net.ko", "virtio_console.ko", "virtio-rng.ko", "overlay.ko", "vsock.ko", "vmw_vsock_virtio_transport_common.ko", "vmw_vsock_virtio_transport.ko"}
	if info.Release != "6.1.0-99-cloud-amd64" || info.Package != "linux-image-6.1.0-99-cloud-amd64" || info.Version != "6.1.999-1" {
		t.Errorf("info = %+v", info)
	}
	if !reflect.DeepEqual(info.Modules, wantMods) || !reflect.DeepEqual(info.Builtin, []string{"ext4"}) {
		t.Errorf("modules = %q builtin = %q", info.Modules, info.Builtin)
	}
	loaded, err := Load(dir)
	if err != nil || !reflect.DeepEqual(loaded, info) {
		t.Errorf("Load = %+v, %v", loaded, err)
	}
	if b, _ := os.ReadFile(filepath.Join(dir, VmlinuzFile)); string(b) != "BZIMAGE" {
		t.Errorf("vmlinuz = %q", b)
	}
	f, err := os.Open(filepath.Join(dir, ModulesFile))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	names, bodies := cpioEntries(t, f)
	md := strings.TrimPrefix(proto.ModulesDir, "/")
	wantNames := []string{"lib", "lib/modules", md}
	for _, m := range wantMods {
		wantNames = append(wantNames, md+"/"+m)
	}
	wantNames = append(wantNames, strings.TrimPrefix(proto.ModulesOrder, "/"))
	if !reflect.DeepEqual(names, wantNames) {
		t.Errorf("cpio = %q\nwant  %q", names, wantNames)
	}
	if got := bodies[strings.TrimPrefix(proto.ModulesOrder, "/")]; got != strings.Join(wantMods, "\n")+"\n" {
		t.Errorf("load.order = %q", got)
	}
	if _, err := elf.NewFile(strings.NewReader(bodies[md+"/virtio_blk.ko"])); err != nil {
		t.Errorf("module in cpio is not the ELF file: %v", err)
	}

	// A re-import replaces the directory whole and leaves nothing behind.
	if _, err := ImportDebianCloud(context.Background(), ImportOptions{Dir: dir, DebFile: deb}); err != nil {
		t.Fatal(err)
	}
	entries, _ := os.ReadDir(filepath.Dir(dir))
	if len(entries) != 1 || entries[0].Name() != "k1" {
		t.Errorf("kernels dir holds %v", entries)
	}
}

func TestImportFailsCleanly(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "k")
	bad := filepath.Join(t.TempDir(), "bad.deb")
	os.WriteFile(bad, []byte("garbage"), 0o644)
	_, err := ImportDebianCloud(context.Background(), ImportOptions{Dir: dir, DebFile: bad})
	if err == nil || !strings.HasPrefix(err.Error(), "import kernel: dpkg -x "+bad+": ") || strings.Count(err.Error(), "import kernel") != 1 {
		t.Errorf("garbage .deb: %v, want one 'import kernel: dpkg -x %s: …'", err, bad)
	}
	if entries, _ := os.ReadDir(filepath.Dir(dir)); len(entries) != 0 {
		t.Errorf("failed import left %v", entries)
	}
	t.Setenv("PATH", t.TempDir())
	_, err = ImportDebianCloud(context.Background(), ImportOptions{Dir: dir})
	if err == nil || !strings.Contains(err.Error(), "dpkg") {
		t.Errorf("missing tools: %v", err)
	}
	if _, err := Load(dir); err == nil {
		t.Error("Load of a missing kernel succeeded")
	}
}

// debugfsCat reads one file out of an ext4 image with debugfs.
func debugfsCat(t *testing.T, img, path string) string {
	t.Helper()
	debugfs, err := SbinTool("debugfs", "e2fsprogs")
	if err != nil {
		t.Fatal(err)
	}
	out, err := exec.Command(debugfs, "-R", "cat "+path, img).Output()
	if err != nil {
		t.Fatalf("debugfs cat %s: %v", path, err)
	}
	return string(out)
}

func TestImportBuildsModulesDisk(t *testing.T) {
	deb := fakeKernelDeb(t)
	dir := filepath.Join(t.TempDir(), "k")
	info, err := ImportDebianCloud(context.Background(), ImportOptions{Dir: dir, DebFile: deb})
	if err != nil {
		t.Fatal(err)
	}
	if !HasModulesDisk(dir, info) {
		t.Fatalf("no modules disk: %+v", info)
	}
	img := filepath.Join(dir, ModulesDiskFile)
	st, err := os.Stat(img)
	if err != nil || st.Mode().Perm() != 0o444 {
		t.Fatalf("modules disk %v, %v: want a read-only file", st, err)
	}
	uuid, err := image.ReadExt4UUID(img)
	if err != nil || uuid == "" || uuid != info.ModulesUUID {
		t.Fatalf("disk uuid %q (%v), kernel.json says %q", uuid, err, info.ModulesUUID)
	}
	// depmod ran on the tree: its indexes are at the filesystem's root
	// and list every module, not only the boot ones.
	dep := debugfsCat(t, img, "/modules.dep")
	for _, want := range []string{"kernel/drivers/block/virtio_blk.ko:", "kernel/fs/fat/vfat.ko:"} {
		if !strings.Contains(dep, want) {
			t.Errorf("modules.dep lacks %q:\n%s", want, dep)
		}
	}
	if a := debugfsCat(t, img, "/modules.alias"); !strings.Contains(a, "alias fake:vfat vfat\n") {
		t.Errorf("modules.alias = %q", a)
	}
	if b := debugfsCat(t, img, "/modules.dep.bin"); len(b) == 0 {
		t.Error("no modules.dep.bin (modprobe's index)")
	}
	if b := debugfsCat(t, img, "/modules.builtin"); !strings.Contains(b, "ext4.ko") {
		t.Errorf("modules.builtin = %q", b)
	}
	if b := debugfsCat(t, img, "/kernel/fs/overlayfs/overlay.ko"); !strings.HasPrefix(b, "\x7fELF") {
		t.Errorf("overlay.ko in the disk is not the module")
	}
	// A re-import gets a fresh UUID: two imports never share one.
	again, err := ImportDebianCloud(context.Background(), ImportOptions{Dir: filepath.Join(t.TempDir(), "k2"), DebFile: deb})
	if err != nil || again.ModulesUUID == info.ModulesUUID {
		t.Errorf("second import uuid %q (%v), first %q", again.ModulesUUID, err, info.ModulesUUID)
	}
}

func TestModulesDiskNeedsKmod(t *testing.T) {
	t.Setenv("PATH", t.TempDir())
	saved := sbinDirs
	sbinDirs = []string{t.TempDir()}
	t.Cleanup(func() { sbinDirs = saved })
	_, err := ImportDebianCloud(context.Background(), ImportOptions{Dir: filepath.Join(t.TempDir(), "k"), DebFile: "x.deb"})
	if err == nil || !strings.HasPrefix(err.Error(), "import kernel: depmod not found; ") || !strings.Contains(err.Error(), "kmod package") {
		t.Errorf("err = %v, want 'import kernel: depmod not found; …' naming the kmod package", err)
	}
}

func TestHasModulesDisk(t *testing.T) {
	dir := t.TempDir()
	if HasModulesDisk(dir, Info{ModulesUUID: "x"}) {
		t.Error("no file, yet a disk")
	}
	os.WriteFile(filepath.Join(dir, ModulesDiskFile), nil, 0o444)
	if HasModulesDisk(dir, Info{}) {
		t.Error("no uuid recorded, yet a disk")
	}
	if !HasModulesDisk(dir, Info{ModulesUUID: "x"}) {
		t.Error("file and uuid, yet no disk")
	}
}

// TestAddModulesDisk upgrades an import made before module disks: only
// the disk and kernel.json change.
func TestAddModulesDisk(t *testing.T) {
	deb := fakeKernelDeb(t)
	dir := filepath.Join(t.TempDir(), "k")
	info, err := ImportDebianCloud(context.Background(), ImportOptions{Dir: dir, DebFile: deb})
	if err != nil {
		t.Fatal(err)
	}
	// Make it look like an old import.
	os.Remove(filepath.Join(dir, ModulesDiskFile))
	old := info
	old.ModulesUUID = ""
	js, _ := json.Marshal(old)
	os.WriteFile(filepath.Join(dir, InfoFile), js, 0o644)
	cpioBefore, _ := os.ReadFile(filepath.Join(dir, ModulesFile))

	up, err := AddModulesDisk(context.Background(), ImportOptions{Dir: dir, DebFile: deb})
	if err != nil {
		t.Fatal(err)
	}
	loaded, err := Load(dir)
	if err != nil || !HasModulesDisk(dir, loaded) || loaded.ModulesUUID != up.ModulesUUID || loaded.Release != info.Release {
		t.Fatalf("after upgrade: %+v, %v", loaded, err)
	}
	if u, _ := image.ReadExt4UUID(filepath.Join(dir, ModulesDiskFile)); u != up.ModulesUUID {
		t.Errorf("disk uuid %q, kernel.json %q", u, up.ModulesUUID)
	}
	if b, _ := os.ReadFile(filepath.Join(dir, ModulesFile)); !bytes.Equal(b, cpioBefore) {
		t.Error("modules.cpio rewritten")
	}
	entries, _ := os.ReadDir(dir)
	for _, e := range entries {
		if strings.HasPrefix(e.Name(), ".") {
			t.Errorf("left behind %s", e.Name())
		}
	}
	// Another release's package is refused.
	os.Remove(filepath.Join(dir, ModulesDiskFile))
	other := loaded
	other.Release = "6.1.0-1-other"
	js, _ = json.Marshal(other)
	os.WriteFile(filepath.Join(dir, InfoFile), js, 0o644)
	if _, err := AddModulesDisk(context.Background(), ImportOptions{Dir: dir, DebFile: deb}); err == nil || !strings.Contains(err.Error(), "not 6.1.0-1-other") {
		t.Errorf("mismatched release: %v", err)
	}
}
