// Package image owns banger's root filesystem images: building the golden
// Debian image (mmdebstrap's tar stream, customised in Go, converted to ext4
// by tar2ext4 — nothing is unpacked on the host and no chroot is entered by
// banger), and creating the per-VM ext4 overlay and work disks.
package image

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"strings"
	"syscall"
	"time"

	"github.com/Microsoft/hcsshim/ext4/tar2ext4"
	"github.com/banger-dev/banger/internal/progress"
)

// BuildOptions configures BuildGolden.
type BuildOptions struct {
	OutPath string // ext4 image to produce; replaced atomically
	Suite   string // Debian suite, default "bookworm"
	// Mirror is the Debian archive URL. Empty: the host's apt sources
	// (see DefaultMirror), else FallbackMirror.
	Mirror string
	// SecurityMirror is the archive for "<suite>-security". Empty: taken
	// from the host's sources when Mirror is empty too, none otherwise (a
	// caller pointing at a private mirror does not want the build to reach
	// deb.debian.org behind its back). "none" disables it explicitly.
	SecurityMirror string
	// Recipe is what to build; nil is GoldenRecipe.
	Recipe   *Recipe
	Progress progress.Reporter // short human-readable "image" steps; may be nil
	Log      io.Writer         // full mmdebstrap output; may be nil
}

// GoldenPackages are installed on top of mmdebstrap's "apt" variant
// (Essential packages + apt). Recommends are not installed.
var GoldenPackages = []string{
	"systemd", "systemd-sysv", // init; the agent hands PID 1 to /sbin/init
	"udev",                    // device units and /dev/disk/by-*: users expect a normal machine
	"dbus",                    // logind and hostnamectl/timedatectl need the system bus
	"openssh-server",          // `ssh <name>.vm`
	"git",                     // `vm run ./repo` and workspace export work on a checkout
	"kmod",                    // modprobe/lsmod: the kernel's module disk is at /lib/modules
	"ca-certificates", "curl", // HTTPS from inside the guest
	"sudo", "iproute2", "iputils-ping", "procps", "less", "netbase",
}

// dpkgExcludes keep documentation, manuals and translations out of the
// image (about a tenth of its size). They stay in dpkg's config inside the
// image, so packages installed later in a VM are slimmed the same way.
var dpkgExcludes = []string{
	"path-exclude=/usr/share/man/*",
	"path-exclude=/usr/share/info/*",
	"path-exclude=/usr/share/locale/*",
	"path-include=/usr/share/locale/locale.alias",
	"path-exclude=/usr/share/doc/*",
	"path-include=/usr/share/doc/*/copyright", // licences must ship
}

// eatmydataHooks makes dpkg skip fsync inside the build chroot (48 s
// instead of 61 s measured). The hook scripts call dpkg-architecture.
const eatmydataHooks = "/usr/share/mmdebstrap/hooks/eatmydata"

// maxImageSize caps the ext4 image tar2ext4 writes. tar2ext4 sizes the
// filesystem to its contents (the image is read-only, so no free space is
// needed); the cap only bounds runaway input and sets how many
// group-descriptor blocks are reserved up front: one 4 KiB block per
// 16 GiB, so this generous cap costs 16 KiB.
const maxImageSize = 64 << 30

// BuildGolden builds a golden Debian image (opts.Recipe, the default
// one when nil) at opts.OutPath.
func BuildGolden(ctx context.Context, opts BuildOptions) error {
	if opts.OutPath == "" {
		return errors.New("build golden image: no output path")
	}
	if opts.Suite == "" {
		opts.Suite = "bookworm"
	}
	progress := func(msg string) { progress.Stage(opts.Progress, "image", msg) }
	if _, err := exec.LookPath("mmdebstrap"); err != nil {
		return errors.New("build golden image: mmdebstrap not found; install the mmdebstrap package (apt-get install mmdebstrap)")
	}
	sources := goldenSources(opts)
	args := mmdebstrapArgs(opts.Suite, opts.Recipe.packages(), sources, useEatmydata())

	start := time.Now()
	progress(fmt.Sprintf("building %s rootfs with mmdebstrap from %s", opts.Suite, strings.Join(sources, "; ")))
	// 0644: images hold nothing secret (no host keys, no passwords).
	err := writeAtomic(opts.OutPath, 0o644, func(f *os.File) error {
		return runPipeline(ctx, args, opts.Recipe.filter(filterOptions{}), f, opts.Log, progress)
	})
	if err != nil {
		return fmt.Errorf("build golden image: %w", err)
	}
	st, err := os.Stat(opts.OutPath)
	if err != nil {
		return fmt.Errorf("build golden image: %w", err)
	}
	progress(fmt.Sprintf("wrote %s: %d MiB in %s", opts.OutPath, st.Size()>>20, time.Since(start).Round(100*time.Millisecond)))
	return nil
}

// goldenSources are the apt source lines the image is built from; they
// also end up as the image's own /etc/apt/sources.list.
func goldenSources(opts BuildOptions) []string {
	mirror, sec := opts.Mirror, opts.SecurityMirror
	if mirror == "" {
		mirror = DefaultMirror(opts.Suite)
		if sec == "" {
			sec = defaultSecurityMirror(opts.Suite)
		}
	}
	lines := []string{fmt.Sprintf("deb %s %s main", mirror, opts.Suite)}
	switch opts.Suite {
	case "sid", "unstable", "experimental", "rc-buggy":
		// Rolling suites have no -updates or -security.
		return lines
	}
	lines = append(lines, fmt.Sprintf("deb %s %s-updates main", mirror, opts.Suite))
	if sec != "" && sec != "none" {
		lines = append(lines, fmt.Sprintf("deb %s %s-security main", sec, opts.Suite))
	}
	return lines
}

func useEatmydata() bool {
	if st, err := os.Stat(eatmydataHooks); err != nil || !st.IsDir() {
		return false
	}
	_, err := exec.LookPath("dpkg-architecture")
	return err == nil
}

func mmdebstrapArgs(suite string, packages, sources []string, eatmydata bool) []string {
	args := []string{
		"--variant=apt",
		"--format=tar",
		"--include=" + strings.Join(packages, ","),
	}
	if eatmydata {
		args = append(args, "--hook-dir="+eatmydataHooks)
	}
	for _, o := range dpkgExcludes {
		args = append(args, "--dpkgopt="+o)
	}
	// Target "-" is stdout; sources as arguments so mmdebstrap does not
	// read them from stdin.
	args = append(args, suite, "-")
	return append(args, sources...)
}

// runPipeline runs mmdebstrap | customizeTar | tar2ext4 into f.
func runPipeline(parent context.Context, args []string, fopt filterOptions, f *os.File, logw io.Writer, progress func(string)) error {
	ctx, cancel := context.WithCancel(parent)
	defer cancel()
	cmd := exec.CommandContext(ctx, "mmdebstrap", args...)
	// On cancel, SIGTERM the whole process group: mmdebstrap itself then
	// unmounts /proc, /dev... from its build directory and removes it
	// (SIGKILL would leave them behind), and its apt/dpkg children stop
	// at once instead of finishing their step first.
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	cmd.Cancel = func() error { return syscall.Kill(-cmd.Process.Pid, syscall.SIGTERM) }
	cmd.WaitDelay = 30 * time.Second
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		return err
	}
	tail := &logTail{w: logw, progress: progress}
	cmd.Stderr = tail
	if err := cmd.Start(); err != nil {
		return fmt.Errorf("start mmdebstrap: %w", err)
	}

	pr, pw := io.Pipe()
	filterErr := make(chan error, 1)
	go func() {
		fopt.ModTime = time.Now().Truncate(time.Second)
		err := customizeTar(stdout, pw, fopt)
		pw.CloseWithError(err)
		filterErr <- err
	}()
	convErr := tar2ext4.ConvertTarToExt4(pr, f, tar2ext4.ConvertWhiteout, tar2ext4.MaximumDiskSize(maxImageSize))
	if convErr != nil {
		pr.CloseWithError(convErr) // unblocks the filter
		cancel()                   // and stops mmdebstrap
	}
	if convErr == nil {
		convErr = fixInodeBitmapPadding(f, f)
	}
	fErr := <-filterErr
	waitErr := cmd.Wait()
	tail.flush()
	var inErr *inputError
	switch {
	case parent.Err() != nil:
		return parent.Err()
	case errors.As(fErr, &inErr):
		// The producer side failed first; the ext4 side only saw a cut
		// stream, and mmdebstrap was already gone when it was cancelled.
		if st := cmd.ProcessState; st != nil && !st.Success() {
			return fmt.Errorf("mmdebstrap: %s\n%s", st, tail.last())
		}
		return fmt.Errorf("mmdebstrap output: %w\n%s", fErr, tail.last())
	case convErr != nil:
		return fmt.Errorf("convert to ext4: %w", convErr)
	case waitErr != nil:
		return fmt.Errorf("mmdebstrap: %w\n%s", waitErr, tail.last())
	}
	return fErr
}

// logTail forwards mmdebstrap's stderr to the log, turns its "I:" lines
// into progress messages, and remembers the last lines for error reports.
type logTail struct {
	w        io.Writer
	progress func(string)
	partial  []byte
	lines    []string
}

func (t *logTail) Write(p []byte) (int, error) {
	if t.w != nil {
		_, _ = t.w.Write(p) // a broken log must not fail the build
	}
	t.partial = append(t.partial, p...)
	for {
		i := bytes.IndexByte(t.partial, '\n')
		if i < 0 {
			break
		}
		t.line(string(t.partial[:i]))
		t.partial = t.partial[i+1:]
	}
	return len(p), nil
}

func (t *logTail) line(l string) {
	if msg, ok := strings.CutPrefix(l, "I: "); ok {
		t.progress("mmdebstrap: " + msg)
	}
	t.lines = append(t.lines, l)
	if len(t.lines) > 20 {
		t.lines = t.lines[1:]
	}
}

func (t *logTail) flush() {
	if len(t.partial) > 0 {
		t.line(string(t.partial))
		t.partial = nil
	}
}

func (t *logTail) last() string { return strings.Join(t.lines, "\n") }
