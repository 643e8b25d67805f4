package image

import (
	"archive/tar"
	"bytes"
	"context"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// tent is one entry of a test layer.
type tent struct {
	name, body, link string
	typ              byte
	mode             int64
	uid, gid         int
	xattrs           map[string]string
}

func tdir(n string) tent        { return tent{name: n, typ: tar.TypeDir, mode: 0o755} }
func tfile(n, body string) tent { return tent{name: n, typ: tar.TypeReg, body: body, mode: 0o644} }
func tsym(n, target string) tent {
	return tent{name: n, typ: tar.TypeSymlink, link: target, mode: 0o777}
}
func tlink(n, target string) tent {
	return tent{name: n, typ: tar.TypeLink, link: target}
}

func tarBytes(t testing.TB, ents []tent) []byte {
	t.Helper()
	var b bytes.Buffer
	tw := tar.NewWriter(&b)
	for _, e := range ents {
		h := &tar.Header{Name: e.name, Typeflag: e.typ, Mode: e.mode, Uid: e.uid, Gid: e.gid,
			Linkname: e.link, Size: int64(len(e.body)), ModTime: time.Unix(1700000000, 0), Format: tar.FormatPAX}
		if e.typ == tar.TypeChar {
			h.Devmajor, h.Devminor = 1, 3
		}
		for k, v := range e.xattrs {
			if h.PAXRecords == nil {
				h.PAXRecords = map[string]string{}
			}
			h.PAXRecords["SCHILY.xattr."+k] = v
		}
		if err := tw.WriteHeader(h); err != nil {
			t.Fatal(err)
		}
		io.WriteString(tw, e.body)
	}
	tw.Close()
	return b.Bytes()
}

func memLayer(t *testing.T, name string, ents []tent) Layer {
	b := tarBytes(t, ents)
	return Layer{Name: name, Size: int64(len(b)), Open: func(count func(int64)) (EntryReader, io.Closer, error) {
		return tar.NewReader(&countingReader{r: bytes.NewReader(b), fn: count}), io.NopCloser(nil), nil
	}}
}

// flattenT flattens layers into a temp file, checks it with e2fsck and
// opens it with the pure-Go reader.
func flattenT(t *testing.T, layers []Layer, opts FlattenOptions) (*Ext4, FlattenResult, error) {
	t.Helper()
	out, err := os.Create(filepath.Join(t.TempDir(), "img.ext4"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { out.Close() })
	res, err := Flatten(context.Background(), layers, out, opts)
	if err != nil {
		return nil, res, err
	}
	fsck(t, out.Name())
	fs, err := OpenExt4(out)
	if err != nil {
		t.Fatal(err)
	}
	return fs, res, nil
}

func fsck(t *testing.T, path string) {
	t.Helper()
	if _, err := exec.LookPath("e2fsck"); err != nil {
		t.Fatal("e2fsck not found: install e2fsprogs (scripts/setup.sh does)")
	}
	if out, err := exec.Command("e2fsck", "-fn", path).CombinedOutput(); err != nil {
		t.Fatalf("e2fsck -fn %s: %v\n%s", path, err, out)
	}
}

func statT(t *testing.T, fs *Ext4, p string) *Ext4Inode {
	t.Helper()
	in, err := fs.Lookup(p)
	if err != nil {
		t.Fatalf("lookup %s: %v", p, err)
	}
	return in
}

func content(t *testing.T, fs *Ext4, p string) string {
	t.Helper()
	b, err := readImageFile(fs, p, 1<<20)
	if err != nil {
		t.Fatalf("read %s: %v", p, err)
	}
	return string(b)
}

func absent(t *testing.T, fs *Ext4, p string) {
	t.Helper()
	if _, err := fs.Lookup(p); err == nil {
		t.Errorf("%s is in the image, want it gone", p)
	}
}

func TestFlattenMultiLayer(t *testing.T) {
	setuid := tent{name: "usr/bin/su", typ: tar.TypeReg, body: "su", mode: 0o4755}
	home := tent{name: "home/u/", typ: tar.TypeDir, mode: 0o700, uid: 1000, gid: 1000}
	capped := tent{name: "usr/bin/ping", typ: tar.TypeReg, body: "ping", mode: 0o755, xattrs: map[string]string{"security.capability": "\x01\x00\x00\x02", "trusted.overlay.opaque": "y"}}
	base := memLayer(t, "base", []tent{
		tdir("./"), tdir("etc/"), tfile("etc/a", "A"), tlink("etc/a2", "etc/a"),
		tdir("etc/d/"), tfile("etc/d/old1", "1"), tdir("etc/d/sub/"), tfile("etc/d/sub/old2", "2"),
		tdir("usr/"), tdir("usr/bin/"), setuid, capped, tdir("usr/sbin/"),
		{name: "usr/sbin/init", typ: tar.TypeReg, body: "#!init", mode: 0o755},
		{name: "usr/sbin/sshd", typ: tar.TypeReg, body: "sshd", mode: 0o755},
		tsym("sbin", "usr/sbin"), tdir("home/"), home, tfile("home/u/.profile", "p"),
		tdir("dev/"), {name: "dev/null", typ: tar.TypeChar, mode: 0o666},
		tfile("etc/replaced", "old"),
	})
	top := memLayer(t, "top", []tent{
		tdir("etc/"), tfile("etc/.wh.a", ""), tdir("etc/d/"), tfile("etc/d/.wh..wh..opq", ""), tfile("etc/d/new", "N"),
		tfile("etc/b", "B"), tlink("etc/b2", "etc/b"), tfile("etc/replaced", "new"),
		// A cross-layer hard link to a file only the lower layer has.
		tlink("etc/profile-link", "home/u/.profile"),
	})
	var notes []string
	fs, res, err := flattenT(t, []Layer{base, top}, FlattenOptions{Note: func(s string) { notes = append(notes, s) }})
	if err != nil {
		t.Fatal(err)
	}
	absent(t, fs, "/etc/a")
	if got := content(t, fs, "/etc/a2"); got != "A" {
		t.Errorf("hard link to a whited-out file: %q, want its data", got)
	}
	absent(t, fs, "/etc/d/old1")
	absent(t, fs, "/etc/d/sub")
	if got := content(t, fs, "/etc/d/new"); got != "N" {
		t.Errorf("etc/d/new = %q", got)
	}
	if b, b2 := statT(t, fs, "/etc/b"), statT(t, fs, "/etc/b2"); b.Num != b2.Num || b.Links != 2 {
		t.Errorf("etc/b and etc/b2: inodes %d %d links %d, want one inode with 2 links", b.Num, b2.Num, b.Links)
	}
	if got := content(t, fs, "/etc/replaced"); got != "new" {
		t.Errorf("upper layer must win: %q", got)
	}
	if got := content(t, fs, "/etc/profile-link"); got != "p" {
		t.Errorf("cross-layer hard link: %q", got)
	}
	if in := statT(t, fs, "/usr/bin/su"); in.Mode&0o7777 != 0o4755 || in.UID != 0 {
		t.Errorf("setuid file: mode %o uid %d", in.Mode&0o7777, in.UID)
	}
	if in := statT(t, fs, "/home/u"); in.UID != 1000 || in.GID != 1000 || in.Mode&0o777 != 0o700 {
		t.Errorf("home/u: uid %d gid %d mode %o", in.UID, in.GID, in.Mode&0o777)
	}
	ping := statT(t, fs, "/usr/bin/ping")
	xs, err := fs.Xattrs(ping)
	if err != nil || string(xs["security.capability"]) != "\x01\x00\x00\x02" {
		t.Errorf("xattrs of ping: %q %v", xs, err)
	}
	if _, ok := xs["trusted.overlay.opaque"]; ok {
		t.Error("overlayfs xattr from a layer must be dropped")
	}
	if in := statT(t, fs, "/sbin"); in.Mode&modeTypeMask != modeSymlink {
		t.Errorf("sbin is not a symlink: %o", in.Mode)
	} else if l, _ := fs.Readlink(in); l != "usr/sbin" {
		t.Errorf("sbin → %q", l)
	}
	absent(t, fs, "/dev/null")
	if res.SkippedDevices != 1 || !strings.Contains(strings.Join(notes, "\n"), "/dev/null") {
		t.Errorf("device nodes: skipped %d, notes %q", res.SkippedDevices, notes)
	}
	if res.Init != "/sbin/init" || res.InitTarget != "/usr/sbin/init" || !res.HasSSHD {
		t.Errorf("detection: %+v", res)
	}
}

func TestFlattenRefusesEscapes(t *testing.T) {
	for _, c := range []struct {
		name string
		ents []tent
		want string
	}{
		{"dotdot", []tent{tfile("../evil", "x")}, `"../evil"`},
		{"nested dotdot", []tent{tdir("a/"), tfile("a/../../evil", "x")}, `"a/../../evil"`},
		{"absolute", []tent{tfile("/etc/passwd", "x")}, `"/etc/passwd"`},
		{"symlink write-through", []tent{tsym("x", "/etc"), tfile("x/passwd", "x")}, `"x/passwd"`},
		{"symlink dir write-through", []tent{tsym("x", "../../../"), tdir("x/y/")}, `"x/y"`},
		{"hardlink out", []tent{tlink("sh", "../../etc/shadow")}, `"../../etc/shadow"`},
		{"hardlink absolute", []tent{tlink("sh", "/etc/shadow")}, `"/etc/shadow"`},
		{"hardlink to nothing", []tent{tlink("sh", "etc/shadow")}, `"etc/shadow"`},
	} {
		t.Run(c.name, func(t *testing.T) {
			_, _, err := flattenT(t, []Layer{memLayer(t, "evil", c.ents)}, FlattenOptions{})
			if err == nil || !strings.Contains(err.Error(), c.want) || !strings.Contains(err.Error(), "refused") {
				t.Fatalf("err = %v, want a refusal naming %s", err, c.want)
			}
		})
	}
}

func TestFlattenLimits(t *testing.T) {
	big := tfile("big", strings.Repeat("z", 4096))
	_, _, err := flattenT(t, []Layer{memLayer(t, "bomb", []tent{big, big})}, FlattenOptions{MaxBytes: 5000})
	if err == nil || !strings.Contains(err.Error(), "decompression bomb") {
		t.Fatalf("err = %v", err)
	}
	_, _, err = flattenT(t, []Layer{memLayer(t, "many", []tent{tfile("a", ""), tfile("b", ""), tfile("c", "")})}, FlattenOptions{MaxEntries: 2})
	if err == nil || !strings.Contains(err.Error(), "more than 2 entries") {
		t.Fatalf("err = %v", err)
	}
}

// A lower layer may not turn a directory an upper layer implied into a
// symlink (the classic two-layer write-through); overlay semantics keep
// the directory.
func TestFlattenLowerSymlinkUnderUpperDir(t *testing.T) {
	lower := memLayer(t, "lower", []tent{tsym("x", "/etc")})
	upper := memLayer(t, "upper", []tent{tfile("x/passwd", "mine")})
	fs, _, err := flattenT(t, []Layer{lower, upper}, FlattenOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if in := statT(t, fs, "/x"); !in.IsDir() {
		t.Errorf("x: mode %o, want a directory", in.Mode)
	}
	if got := content(t, fs, "/x/passwd"); got != "mine" {
		t.Errorf("x/passwd = %q", got)
	}
}
