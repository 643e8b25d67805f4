package image

import (
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	"github.com/banger-dev/banger/internal/api"
	"github.com/banger-dev/banger/internal/progress"
)

// fakeMmdebstrap puts a stand-in mmdebstrap first in PATH: it records its
// arguments, logs like the real one, writes tarPath to stdout (only the
// first cut bytes when cut > 0) and exits with rc.
func fakeMmdebstrap(t *testing.T, tarPath string, cut, rc int) (argsFile string) {
	t.Helper()
	bin := t.TempDir()
	argsFile = filepath.Join(bin, "args")
	out := `cat "$FAKE_TAR"`
	if cut > 0 {
		out = `head -c ` + itoa(cut) + ` "$FAKE_TAR"`
	}
	script := "#!/bin/sh\nprintf '%s\\n' \"$@\" > " + argsFile + "\necho 'I: extracting archives...' >&2\n" +
		out + "\necho 'E: boom' >&2\nexit " + itoa(rc) + "\n"
	if err := os.WriteFile(filepath.Join(bin, "mmdebstrap"), []byte(script), 0o755); err != nil {
		t.Fatal(err)
	}
	t.Setenv("PATH", bin+string(os.PathListSeparator)+os.Getenv("PATH"))
	t.Setenv("FAKE_TAR", tarPath)
	return argsFile
}

func itoa(i int) string { return strconv.Itoa(i) }

func writeSyntheticTar(t *testing.T) string {
	p := filepath.Join(t.TempDir(), "rootfs.tar")
	if err := os.WriteFile(p, syntheticRootfs(t), 0o644); err != nil {
		t.Fatal(err)
	}
	return p
}

func TestBuildGoldenWithFakeMmdebstrap(t *testing.T) {
	argsFile := fakeMmdebstrap(t, writeSyntheticTar(t), 0, 0)
	out := filepath.Join(t.TempDir(), "rootfs.ext4")
	var msgs []string
	var log strings.Builder
	err := BuildGolden(context.Background(), BuildOptions{OutPath: out, Mirror: "http://mirror.invalid/debian",
		Progress: progress.Func(func(p api.Progress) { msgs = append(msgs, p.Message) }), Log: &log})
	if err != nil {
		t.Fatal(err)
	}
	args, _ := os.ReadFile(argsFile)
	for _, want := range []string{"--variant=apt", "--format=tar", "bookworm\n-\ndeb http://mirror.invalid/debian bookworm main\n"} {
		if !strings.Contains(string(args), want) {
			t.Errorf("mmdebstrap args lack %q:\n%s", want, args)
		}
	}
	if strings.Contains(string(args), "security") {
		t.Error("explicit mirror must not add the host's security mirror")
	}
	if !strings.Contains(log.String(), "E: boom") || !strings.Contains(strings.Join(msgs, "\n"), "mmdebstrap: extracting archives...") {
		t.Errorf("log %q progress %q", log.String(), msgs)
	}
	if o, err := exec.Command("e2fsck", "-fn", out).CombinedOutput(); err != nil {
		t.Fatalf("e2fsck: %v\n%s", err, o)
	}
	o, err := exec.Command("debugfs", "-R", "ls -l /etc/systemd/system", out).Output()
	if err != nil || !strings.Contains(string(o), "systemd-firstboot.service") {
		t.Errorf("debugfs: %v\n%s", err, o)
	}
	if st, _ := os.Stat(out); st.Mode().Perm() != 0o644 {
		t.Errorf("mode %v", st.Mode())
	}
}

func TestBuildGoldenFailures(t *testing.T) {
	tarPath := writeSyntheticTar(t)
	dir := t.TempDir()
	out := filepath.Join(dir, "rootfs.ext4")

	// mmdebstrap dies halfway: its error and log tail are reported, not
	// the truncated stream, and no partial image is left.
	fakeMmdebstrap(t, tarPath, 3000, 1)
	err := BuildGolden(context.Background(), BuildOptions{OutPath: out, Mirror: "http://m.invalid/debian"})
	if err == nil || !strings.Contains(err.Error(), "mmdebstrap: exit status 1") || !strings.Contains(err.Error(), "E: boom") {
		t.Errorf("cut stream: %v", err)
	}
	// Clean exit but a cut stream is still an error, also when cut at a
	// block boundary (which archive/tar alone reports as a clean end).
	for _, cut := range []int{3000, 3072} {
		fakeMmdebstrap(t, tarPath, cut, 0)
		if err := BuildGolden(context.Background(), BuildOptions{OutPath: out, Mirror: "http://m.invalid/debian"}); err == nil || !strings.Contains(err.Error(), "cut short") {
			t.Errorf("tar cut at %d: %v", cut, err)
		}
	}
	if entries, _ := os.ReadDir(dir); len(entries) != 0 {
		t.Errorf("failed builds left %v", entries)
	}

	t.Setenv("PATH", t.TempDir())
	err = BuildGolden(context.Background(), BuildOptions{OutPath: out})
	if err == nil || !strings.Contains(err.Error(), "install the mmdebstrap package") {
		t.Errorf("missing mmdebstrap: %v", err)
	}
}
