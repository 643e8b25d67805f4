package image

import (
	"bytes"
	"strings"
	"testing"
	"time"

	"github.com/banger-dev/banger/internal/agent/proto"
)

// A rootfs as the dev packages' postinsts leave it: Docker, containerd
// and AppArmor enabled at boot.
func devRootfs(t *testing.T) []byte {
	return buildTar(t, []tarEntry{
		dir("./"), dir("./etc/"), dir("./etc/systemd/"), dir("./etc/systemd/system/"),
		dir("./etc/systemd/system/multi-user.target.wants/"),
		link("./etc/systemd/system/multi-user.target.wants/docker.service", "/lib/systemd/system/docker.service"),
		link("./etc/systemd/system/multi-user.target.wants/containerd.service", "/lib/systemd/system/containerd.service"),
		link("./etc/systemd/system/multi-user.target.wants/ssh.service", "/lib/systemd/system/ssh.service"),
		dir("./etc/systemd/system/sysinit.target.wants/"),
		link("./etc/systemd/system/sysinit.target.wants/apparmor.service", "/lib/systemd/system/apparmor.service"),
		dir("./etc/docker/"),
		file("./etc/docker/daemon.json", "{}\n"),
	})
}

func TestDevRecipeFilter(t *testing.T) {
	var out bytes.Buffer
	opt := DevRecipe.filter(filterOptions{ModTime: time.Unix(1700000000, 0)})
	if err := customizeTar(bytes.NewReader(devRootfs(t)), &out, opt); err != nil {
		t.Fatal(err)
	}
	m, _ := readAll(t, out.Bytes())
	for _, gone := range []string{
		"/etc/systemd/system/multi-user.target.wants/docker.service",
		"/etc/systemd/system/multi-user.target.wants/containerd.service",
		"/etc/systemd/system/sysinit.target.wants/apparmor.service",
	} {
		if _, ok := m[gone]; ok {
			t.Errorf("%s is still enabled at boot", gone)
		}
	}
	if e := m["/etc/systemd/system/sockets.target.wants/docker.socket"]; e.hdr.Linkname != "/lib/systemd/system/docker.socket" {
		t.Errorf("docker.socket not enabled: %+v", e.hdr)
	}
	if e := m["/etc/systemd/system/apparmor.service"]; e.hdr.Linkname != "/dev/null" {
		t.Errorf("apparmor.service not masked: %+v", e.hdr)
	}
	if e := m["/etc/docker/daemon.json"]; !strings.Contains(e.body, `"overlay2"`) {
		t.Errorf("daemon.json = %q (the package's own must be replaced)", e.body)
	}
	if e := m["/usr/libexec/docker/cli-plugins/docker-compose"]; e.hdr.Mode != 0o755 || !strings.Contains(e.body, "exec docker-compose") {
		t.Errorf("compose shim = %o %q", e.hdr.Mode, e.body)
	}
	if e := m["/usr/local/bin/docker"]; e.hdr.Mode != 0o755 || !strings.Contains(e.body, `exec "/usr/bin/${0##*/}" "$@"`) {
		t.Errorf("docker wait wrapper = %o %q", e.hdr.Mode, e.body)
	}
	if e := m["/usr/local/bin/docker-compose"]; e.hdr.Linkname != "docker" {
		t.Errorf("docker-compose wrapper: %+v", e.hdr)
	}
	if e := m["/etc/systemd/system/docker.service.d/banger.conf"]; !strings.Contains(e.body, "br_netfilter") {
		t.Errorf("docker drop-in = %q", e.body)
	}
	// The base's own customisations still apply.
	if e := m["/etc/systemd/system/multi-user.target.wants/ssh.service"]; e.hdr.Linkname != "/lib/systemd/system/ssh.service" {
		t.Errorf("ssh.service: %+v", e.hdr)
	}
	dirs, err := proto.ParseDataDirs([]byte(m[proto.DataDirsFile].body))
	if err != nil || strings.Join(dirs, " ") != "var/lib/docker var/lib/containerd" {
		t.Errorf("data dirs = %q, %v", dirs, err)
	}
}

// The default image's recipe adds nothing to the base: its package set
// and tree are what they were before recipes existed.
func TestGoldenRecipeIsTheBase(t *testing.T) {
	if got := GoldenRecipe.packages(); strings.Join(got, ",") != strings.Join(GoldenPackages, ",") {
		t.Errorf("packages = %q", got)
	}
	var a, b bytes.Buffer
	mt := time.Unix(1700000000, 0)
	if err := customizeTar(bytes.NewReader(syntheticRootfs(t)), &a, filterOptions{ModTime: mt}); err != nil {
		t.Fatal(err)
	}
	if err := customizeTar(bytes.NewReader(syntheticRootfs(t)), &b, GoldenRecipe.filter(filterOptions{ModTime: mt})); err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(a.Bytes(), b.Bytes()) {
		t.Error("the golden recipe changes the base image's tree")
	}
	args := strings.Join(mmdebstrapArgs("bookworm", DevRecipe.packages(), []string{"deb http://m/debian bookworm main"}, false), " ")
	for _, p := range append([]string{"openssh-server"}, DevRecipe.Packages...) {
		if !strings.Contains(args, ","+p) && !strings.Contains(args, "="+p) {
			t.Errorf("dev args lack %s: %s", p, args)
		}
	}
}

func TestCatalogRecipes(t *testing.T) {
	c, err := ParseCatalog(embeddedCatalog, BuiltinCatalog)
	if err != nil {
		t.Fatal(err)
	}
	for name, build := range map[string]string{"debian-bookworm": "golden", "debian-bookworm-dev": "golden-dev"} {
		e, ok := c.Lookup(name)
		if !ok || e.Build != build {
			t.Errorf("%s: %+v", name, e)
		}
		if r, ok := LookupRecipe(build); !ok || r.Build != build {
			t.Errorf("recipe %s: %v", build, r)
		}
	}
	_, err = ParseCatalog([]byte(`{"version":1,"images":[{"name":"x","build":"gentoo"}]}`), "test")
	if err == nil || !strings.Contains(err.Error(), `unknown build "gentoo" (known: golden, golden-dev)`) {
		t.Errorf("unknown build: %v", err)
	}
	keys := map[string]bool{}
	for _, n := range RecipeNames() {
		r, _ := LookupRecipe(n)
		if keys[r.Key] {
			t.Errorf("two recipes share the cache key %s", r.Key)
		}
		keys[r.Key] = true
	}
}
