package e2e

import (
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/google/go-containerregistry/pkg/name"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/tarball"

	"github.com/banger-dev/banger/internal/artifacts/artifactstest"
)

// devImage is the built-in development image.
const devImage = "debian-bookworm-dev"

// testImageRef is the busybox image the Docker tests load into guests.
const testImageRef = "banger-test/busybox:1"

// provisionDev builds (or takes from the shared cache) the dev image
// with a daemon in the host's namespace, as provision does for the
// default one: the first build downloads Debian packages.
func provisionDev(e *env) time.Duration {
	e.t.Helper()
	start := time.Now()
	if out, err := e.hostBanger("image", "build", devImage).CombinedOutput(); err != nil {
		e.t.Fatalf("banger image build %s: %v\n%s", devImage, err, out)
	}
	took := time.Since(start)
	e.t.Logf("provision: banger image build %s in %s", devImage, took.Round(time.Millisecond))
	e.stopDaemon()
	return took
}

// busyboxImage writes a one-layer Docker image archive (what `docker
// save` makes, for `docker load`) of the host's static busybox: no
// registry is reachable from the guests.
func busyboxImage(t *testing.T) string {
	t.Helper()
	bb, err := os.ReadFile("/bin/busybox")
	if err != nil {
		t.Fatalf("%v: the Docker tests need a static busybox on the host (apt-get install busybox-static; make setup-test installs it)", err)
	}
	files := map[string]string{"bin/busybox": string(bb)}
	for _, applet := range []string{"sh", "echo", "cat", "mkdir", "httpd", "ping", "nslookup", "sleep", "true"} {
		files["bin/"+applet+"@sym"] = "busybox"
	}
	img := artifactstest.Image(t, files, v1.Config{Env: []string{"PATH=/bin"}, Cmd: []string{"sh"}})
	out := filepath.Join(t.TempDir(), "busybox.tar")
	must(t, tarball.WriteToFile(out, name.MustParseReference(testImageRef), img))
	return out
}

// TestDocker runs Docker inside real guests of the dev image, with
// nothing reachable from the guest but banger's own network: a busybox
// image made on the host is loaded, run, built upon and served from, and
// the images and a volume outlive a stop/start.
func TestDocker(t *testing.T) {
	e := newEnv(t)
	provisionDev(e)
	archive := busyboxImage(t)

	t.Run("vm run: docker load and docker run in a fresh VM", func(t *testing.T) {
		e.t = t
		// The archive travels as a workspace: a repository holding it.
		repo := filepath.Join(t.TempDir(), "repo")
		must(t, os.MkdirAll(repo, 0o755))
		b, err := os.ReadFile(archive)
		must(t, err)
		must(t, os.WriteFile(filepath.Join(repo, "busybox.tar"), b, 0o644))
		gitIn(t, repo, "init", "-q", "-b", "main")
		gitIn(t, repo, "add", "-A")
		gitIn(t, repo, "-c", "user.name=h", "-c", "user.email=h@example.com", "commit", "-q", "-m", "image")
		r := e.banger("vm", "run", "--rm", "--image", devImage, repo, "--", "sh", "-c",
			"docker load -q -i busybox.tar && docker run --rm "+testImageRef+" echo hi")
		if r.code != 0 || !strings.Contains(r.out, "Loaded image: "+testImageRef) || !strings.HasSuffix(r.out, "hi\n") {
			t.Fatalf("vm run: exit %d\nstdout: %s\nstderr: %s", r.code, r.out, r.err)
		}
	})

	e.must("vm", "create", "--name", "dk", "--image", devImage)
	defer e.banger("vm", "delete", "dk")
	exec := func(t *testing.T, script string) string {
		t.Helper()
		r := e.banger("vm", "exec", "dk", "--", "sh", "-c", script)
		if r.code != 0 {
			t.Fatalf("vm exec dk -- sh -c %q: exit %d\nstdout: %s\nstderr: %s", script, r.code, r.out, r.err)
		}
		return r.out
	}

	t.Run("docker is socket-activated, not started at boot", func(t *testing.T) {
		e.t = t
		out := exec(t, "systemctl is-active docker.socket; systemctl is-active docker.service containerd.service || true")
		if out != "active\ninactive\ninactive\n" {
			t.Errorf("after boot: %q, want docker.socket active and docker/containerd inactive", out)
		}
	})

	e.must("vm", "cp", archive, "dk:/root/busybox.tar")

	t.Run("load, run, info: overlay2 on ext4, cgroup v2", func(t *testing.T) {
		e.t = t
		if out := exec(t, "docker load -i /root/busybox.tar"); !strings.Contains(out, "Loaded image: "+testImageRef) {
			t.Errorf("docker load: %q", out)
		}
		if out := exec(t, "docker run --rm "+testImageRef+" echo hi"); out != "hi\n" {
			t.Errorf("docker run: %q", out)
		}
		if out := exec(t, "docker info --format '{{.Driver}} {{.CgroupVersion}} {{.CgroupDriver}}'"); out != "overlay2 2 systemd\n" {
			t.Errorf("docker info: %q, want overlay2 on cgroup v2 (systemd driver)", out)
		}
		if out := exec(t, "findmnt -no FSTYPE --target /var/lib/docker; findmnt -no FSTYPE /"); out != "ext4\noverlay\n" {
			t.Errorf("filesystems of /var/lib/docker and /: %q, want ext4 and overlay", out)
		}
	})

	t.Run("build FROM the loaded image", func(t *testing.T) {
		e.t = t
		exec(t, "mkdir -p /root/ctx && printf 'FROM "+testImageRef+"\\nRUN echo built-in-guest > /built\\n' > /root/ctx/Dockerfile && "+
			"docker build -q -t banger-test/built:1 /root/ctx")
		if out := exec(t, "docker run --rm banger-test/built:1 cat /built"); out != "built-in-guest\n" {
			t.Errorf("built image: %q", out)
		}
	})

	t.Run("published port and container networking through the guest's NAT", func(t *testing.T) {
		e.t = t
		exec(t, "docker run -d --name web -p 8080:80 "+testImageRef+
			" sh -c 'mkdir -p /www && echo hello-from-container > /www/index.html && exec httpd -f -p 80 -h /www'")
		var vm struct {
			IP string `json:"ip"`
		}
		must(t, json.Unmarshal([]byte(e.must("vm", "show", "dk", "--json").out), &vm))
		if vm.IP == "" {
			t.Fatal("vm show: no ip")
		}
		for _, host := range []string{"127.0.0.1", vm.IP} { // docker-proxy, then the nft DNAT rule
			out := exec(t, "curl -fsS --retry 20 --retry-connrefused --retry-delay 1 http://"+host+":8080/")
			if out != "hello-from-container\n" {
				t.Errorf("curl %s:8080: %q", host, out)
			}
		}
		// Out of the container through docker0 and the guest's masquerade:
		// banger's gateway answers ping and resolves the VM's name.
		gw := strings.TrimSpace(exec(t, "ip -4 route show default | cut -d' ' -f3"))
		out := exec(t, "docker run --rm "+testImageRef+" sh -c 'ping -c1 -W10 "+gw+" >/dev/null && nslookup dk.vm'")
		if !strings.Contains(out, vm.IP) {
			t.Errorf("nslookup dk.vm from a container: %q, want %s", out, vm.IP)
		}
		exec(t, "docker rm -f web >/dev/null")
		exec(t, "docker volume create keep >/dev/null && docker run --rm -v keep:/data "+testImageRef+" sh -c 'echo kept > /data/f'")
	})

	t.Run("images and volumes survive vm stop and start", func(t *testing.T) {
		e.t = t
		e.must("vm", "stop", "dk")
		e.must("vm", "start", "dk")
		if out := exec(t, "systemctl is-active docker.service || true"); out != "inactive\n" {
			t.Errorf("after start, docker.service is %q: want inactive until used", out)
		}
		out := exec(t, "docker images --format '{{.Repository}}:{{.Tag}}' | sort")
		if out != "banger-test/built:1\n"+testImageRef+"\n" {
			t.Errorf("images after stop/start: %q", out)
		}
		if out := exec(t, "docker run --rm -v keep:/data "+testImageRef+" cat /data/f"); out != "kept\n" {
			t.Errorf("volume after stop/start: %q", out)
		}
	})
}
