package e2e

import (
	"archive/tar"
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/google/go-containerregistry/pkg/name"
	"github.com/google/go-containerregistry/pkg/v1/empty"
	"github.com/google/go-containerregistry/pkg/v1/mutate"
	"github.com/google/go-containerregistry/pkg/v1/remote"
	"github.com/google/go-containerregistry/pkg/v1/tarball"

	"github.com/banger-dev/banger/internal/image"
)

// TestImages pulls an OCI image from a real registry server (Debian's
// docker-registry on 127.0.0.1, in the host's namespace) that the test
// builds from the golden image's files minus systemd and sshd, boots it
// with the agent as PID 1, then exports it as a bundle, serves that as a
// catalog on loopback, pulls it under a new name and boots that too. The
// image's config carries Env, WorkingDir and Cmd: a command sees the
// first and starts in the second, and the copy, run without a command,
// runs the Cmd (found through the image's PATH).
// Pulls run from the host's namespace like provisioning (the VMs' network
// namespace has no route to the host's loopback); VMs run in the namespace.
func TestImages(t *testing.T) {
	e := newEnv(t)
	golden := e.hostImagePath("debian-bookworm")
	e.stopDaemon()
	reg := startRegistry(t)
	ref := reg + "/banger/debian-noinit:e2e"
	start := time.Now()
	pushNoInitImage(t, golden, ref)
	t.Logf("built and pushed %s in %s", ref, time.Since(start).Round(time.Millisecond))
	start = time.Now()

	out, err := e.hostBanger("image", "pull", ref, "--name", "deb-oci").CombinedOutput()
	e.stopDaemon()
	if err != nil {
		t.Fatalf("image pull: %v\n%s", err, out)
	}
	t.Logf("image pull in %s:\n%s", time.Since(start).Round(time.Millisecond), out)
	for _, want := range []string{"download:", "flatten:", "no /sbin/init", "no sshd", "banger-agent runs from the initramfs",
		`default command: ["banger-hello"]`, "image deb-oci ready"} {
		if !strings.Contains(string(out), want) {
			t.Errorf("pull output lacks %q:\n%s", want, out)
		}
	}

	t.Run("an OCI image without init or sshd runs commands through the agent", func(t *testing.T) {
		e.t = t
		r := e.must("vm", "run", "--rm", "--image", "deb-oci", "--", "sh", "-c",
			`cat /etc/os-release; cat /etc/banger-oci; echo "cwd=$(pwd) var=$BANGER_E2E_VAR"; test ! -e /usr/sbin/sshd; test ! -e /sbin/init && echo no-init`)
		for _, want := range []string{"bookworm", "layered", "cwd=/opt/banger-app var=from-image\n", "no-init"} {
			if !strings.Contains(r.out, want) {
				t.Errorf("stdout lacks %q:\n%s", want, r.out)
			}
		}
		e.must("vm", "create", "--name", "nossh", "--image", "deb-oci")
		if r := e.banger("vm", "ssh", "nossh", "--", "true"); r.code == 0 || !strings.Contains(r.err, "no sshd") || !strings.Contains(r.err, "banger vm exec nossh -- CMD") {
			t.Errorf("vm ssh on an image without sshd: exit %d, stderr %q", r.code, r.err)
		}
		// The way in instead: exec through the agent, with the image's
		// environment and working directory, and the command's exit code.
		if r := e.banger("vm", "exec", "nossh", "--", "sh", "-c", `echo "$BANGER_E2E_VAR $(pwd)"; exit 5`); r.code != 5 || r.out != "from-image /opt/banger-app\n" {
			t.Errorf("vm exec: exit %d, stdout %q, stderr %q", r.code, r.out, r.err)
		}
		if r := e.banger("vm", "exec", "nossh", "-u", "nobody", "--", "sh", "-c", `id -un; echo "$HOME"`); r.code != 0 || r.out != "nobody\n/nonexistent\n" {
			t.Errorf("vm exec -u nobody: exit %d, stdout %q, stderr %q", r.code, r.out, r.err)
		}
		if r := e.banger("image", "delete", "deb-oci"); r.code == 0 || !strings.Contains(r.err, "nossh") {
			t.Errorf("image delete while in use: exit %d, stderr %q", r.code, r.err)
		}
		e.must("vm", "delete", "nossh")
		// The golden image defines no command: refused before any VM exists.
		if r := e.banger("vm", "run", "--rm"); r.code != 125 || !strings.Contains(r.err, "image debian-bookworm defines no command: give one after --") {
			t.Errorf("vm run without a command on the golden image: exit %d, stderr %q", r.code, r.err)
		}
		e.assertClean()
	})

	t.Run("export, serve as a catalog, pull under a new name, boot", func(t *testing.T) {
		e.t = t
		pub := t.TempDir()
		e.must("image", "export", "deb-oci", "-o", filepath.Join(pub, "deb.tar.zst"))
		e.stopDaemon()
		srv := httptest.NewServer(http.FileServer(http.Dir(pub)))
		defer srv.Close()
		cfg := filepath.Join(e.home, "config", "banger", "config.toml")
		b, _ := os.ReadFile(cfg)
		os.WriteFile(cfg, append([]byte(fmt.Sprintf("image_catalog = %q\n", srv.URL+"/catalog.json")), b...), 0o600)
		out, err := e.hostBanger("image", "pull", "deb-oci", "--name", "deb-copy").CombinedOutput()
		e.stopDaemon()
		if err != nil {
			t.Fatalf("pull from the catalog: %v\n%s", err, out)
		}
		r := e.must("image", "show", "deb-copy", "--json")
		if !strings.Contains(r.out, `"source": "bundle `+srv.URL) || !strings.Contains(r.out, `"init": "none"`) ||
			!strings.Contains(r.out, `"working_dir": "/opt/banger-app"`) || !strings.Contains(r.out, `"BANGER_E2E_VAR=from-image"`) {
			t.Errorf("image show deb-copy:\n%s", r.out)
		}
		// No command: the image's Cmd, kept through the bundle, runs.
		r = e.must("vm", "run", "--rm", "--image", "deb-copy")
		if !strings.Contains(r.out, "bookworm") || !strings.Contains(r.out, "hello from /opt/banger-app with from-image\n") {
			t.Errorf("the copy's own command:\n%s", r.out)
		}
		e.must("image", "delete", "deb-copy")
		e.assertClean()
	})
}

// hostImagePath asks a host-namespace daemon where an image's file is.
func (e *env) hostImagePath(img string) string {
	e.t.Helper()
	out, err := e.hostBanger("image", "show", img, "--json").Output()
	if err != nil {
		e.t.Fatalf("image show %s: %v", img, err)
	}
	var info struct{ Path string }
	if err := json.Unmarshal(out, &info); err != nil || info.Path == "" {
		e.t.Fatalf("image show %s: %v\n%s", img, err, out)
	}
	return info.Path
}

// startRegistry runs Debian's docker-registry on a free loopback port with
// a throwaway storage directory, and stops it (by PID) at cleanup.
func startRegistry(t *testing.T) string {
	t.Helper()
	bin, err := exec.LookPath("docker-registry")
	if err != nil {
		t.Fatal("docker-registry not found: scripts/setup.sh installs Debian's docker-registry package")
	}
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := l.Addr().String()
	l.Close()
	dir := t.TempDir()
	cfg := filepath.Join(dir, "config.yml")
	os.WriteFile(cfg, []byte(fmt.Sprintf("version: 0.1\nlog:\n  level: error\nstorage:\n  filesystem:\n    rootdirectory: %s\nhttp:\n  addr: %s\n", filepath.Join(dir, "data"), addr)), 0o600)
	cmd := exec.Command(bin, "serve", cfg)
	var logb bytes.Buffer
	cmd.Stdout, cmd.Stderr = &logb, &logb
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		cmd.Process.Kill()
		cmd.Wait()
	})
	for deadline := time.Now().Add(20 * time.Second); ; {
		if resp, err := http.Get("http://" + addr + "/v2/"); err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return addr
			}
		}
		if time.Now().After(deadline) {
			t.Fatalf("docker-registry did not answer on %s:\n%s", addr, logb.String())
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// pushNoInitImage builds a two-layer image: the golden image's files, and
// on top whiteouts of its init, systemd and sshd, a marker file and a
// script in /opt/banger-app/bin; its config sets Env (with that directory
// in PATH), WorkingDir and Cmd (the script). Then it pushes it.
func pushNoInitImage(t *testing.T, golden, ref string) {
	t.Helper()
	tarFile := filepath.Join(t.TempDir(), "golden.tar")
	f, err := os.Create(tarFile)
	must(t, err)
	must(t, image.WriteExt4Tar(golden, f))
	must(t, f.Close())
	base, err := tarball.LayerFromFile(tarFile, tarball.WithCompressedCaching)
	must(t, err)
	var top bytes.Buffer
	tw := tar.NewWriter(&top)
	for _, n := range []string{"usr/sbin/.wh.init", "usr/sbin/.wh.sshd", "usr/lib/systemd/.wh.systemd", "etc/banger-oci",
		"opt/banger-app/", "opt/banger-app/bin/", "opt/banger-app/bin/banger-hello"} {
		h := &tar.Header{Name: n, Typeflag: tar.TypeReg, Mode: 0o644}
		body := map[string]string{"etc/banger-oci": "layered\n",
			"opt/banger-app/bin/banger-hello": "#!/bin/sh\ngrep -m1 PRETTY_NAME /etc/os-release\necho \"hello from $(pwd) with $BANGER_E2E_VAR\"\n"}[n]
		switch {
		case strings.HasSuffix(n, "/"):
			h.Typeflag, h.Mode = tar.TypeDir, 0o755
		case strings.Contains(n, "/bin/"):
			h.Mode = 0o755
		}
		h.Size = int64(len(body))
		must(t, tw.WriteHeader(h))
		io.WriteString(tw, body)
	}
	must(t, tw.Close())
	topb := top.Bytes()
	upper, err := tarball.LayerFromOpener(func() (io.ReadCloser, error) { return io.NopCloser(bytes.NewReader(topb)), nil })
	must(t, err)
	img, err := mutate.AppendLayers(empty.Image, base, upper)
	must(t, err)
	cf, err := img.ConfigFile()
	must(t, err)
	cf = cf.DeepCopy()
	cf.OS, cf.Architecture = "linux", "amd64"
	cf.Config.Env = []string{"PATH=/opt/banger-app/bin:/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin", "BANGER_E2E_VAR=from-image"}
	cf.Config.WorkingDir = "/opt/banger-app"
	cf.Config.Cmd = []string{"banger-hello"}
	img, err = mutate.ConfigFile(img, cf)
	must(t, err)
	r, err := name.ParseReference(ref)
	must(t, err)
	must(t, remote.Write(r, img))
}
