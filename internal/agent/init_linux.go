package agent

import (
	"context"
	"fmt"
	"log/slog"
	"os"
	"runtime/debug"
	"syscall"
	"time"

	"golang.org/x/sys/unix"

	"github.com/banger-dev/banger/internal/agent/proto"
)

const (
	diskTimeout = 10 * time.Second // the config drive and every disk it names
	linkTimeout = 5 * time.Second  // the NIC with the configured MAC
	defaultInit = "/sbin/init"
	// fatalPause lets the console drain the error before power-off, so
	// the host can quote it.
	fatalPause = 2 * time.Second
)

// boot is init mode's state as it goes through its steps.
type boot struct {
	log         *slog.Logger
	args        []string
	cfg         proto.GuestConfig
	disks       map[string]string // role -> device
	workMounted bool
}

// runInit is init mode: the agent is the initramfs's /init.
func runInit(args []string) int {
	ensurePath()
	mountErr := mountKernelFS()
	ensureStdio()
	b := &boot{log: newConsoleLogger(os.Stderr), args: args}
	b.log.Info("init starting", "version", Version)
	if mountErr != nil {
		return b.fatal(mountErr)
	}
	if err := b.run(); err != nil {
		return b.fatal(err)
	}
	b.handOver()
	return 0
}

// run goes through the boot steps in order, logging how long each took.
func (b *boot) run() (err error) {
	defer func() {
		if r := recover(); r != nil {
			err = fmt.Errorf("panic: %v\n%s", r, debug.Stack())
		}
	}()
	steps := []struct {
		name string
		run  func() error
	}{
		{"load modules", func() error { loadModules(b.log); return nil }},
		{"find disks", b.findDisks},
		{"mount root", b.mountRoot},
		{"grow disks", b.growDisks},
		{"mount modules", b.mountModules},
		{"mount data dirs", b.mountDataDirs},
		{"install agent", installAgent},
		{"switch root", func() error { return switchRoot(b.log) }},
		{"apply config", b.applyConfig},
		{"configure network", b.configureNetwork},
	}
	for _, s := range steps {
		start := time.Now()
		if err := s.run(); err != nil {
			return fmt.Errorf("%s: %w", s.name, err)
		}
		b.log.Info(s.name, "took", time.Since(start).Round(time.Millisecond))
	}
	return nil
}

func (b *boot) findDisks() error {
	ctx, cancel := context.WithTimeout(context.Background(), diskTimeout)
	defer cancel()
	var err error
	b.cfg, b.disks, err = findDisks(ctx, b.log)
	if err == nil && b.cfg.Version > proto.ConfigVersion {
		b.log.Warn("config is newer than this agent; unknown settings are ignored", "version", b.cfg.Version)
	}
	return err
}

func (b *boot) mountRoot() error {
	var err error
	b.workMounted, err = mountRoot(b.disks, b.log)
	return err
}

// applyConfig never fails the boot: a VM whose SSH key could not be
// written is still reachable through the agent, where it can be fixed.
func (b *boot) applyConfig() error {
	if b.cfg.Hostname != "" {
		if err := unix.Sethostname([]byte(b.cfg.Hostname)); err != nil {
			b.log.Error("set hostname", "err", err)
		}
	}
	a := configApplier{root: "/", cfg: b.cfg}
	if err := a.apply(b.workMounted); err != nil {
		b.log.Error("apply config", "err", err)
	}
	return nil
}

// configureNetwork does not fail the boot either: the agent channel
// does not need the network.
func (b *boot) configureNetwork() error {
	ctx, cancel := context.WithTimeout(context.Background(), linkTimeout)
	defer cancel()
	if err := configureNetwork(ctx, b.cfg.Net, b.log); err != nil {
		b.log.Error("configure network", "err", err)
	}
	return nil
}

// handOver gives PID 1 to the image's init, with a serving copy of the
// agent alongside, or stays PID 1 when there is no init to run.
func (b *boot) handOver() {
	init := b.cfg.Init
	if init == "" {
		init = defaultInit
	}
	if !isExecutable(init) {
		b.log.Info("no init in the image: the agent stays PID 1", "init", init)
		runAsPID1(b.log)
	}
	child, err := startServeChild()
	if err != nil {
		b.log.Error("start the serving agent", "err", err)
	}
	b.log.Info("handing over to init", "init", init)
	err = syscall.Exec(init, b.initArgv(init), os.Environ())
	// Still here: exec failed. Serving in-process beats a dead guest.
	b.log.Error("exec init failed: the agent stays PID 1", "init", init, "err", err)
	if child != nil {
		child.Kill()
	}
	runAsPID1(b.log)
}

// initArgv passes init the arguments the kernel gave /init (those of the
// command line it did not recognise, such as "single").
func (b *boot) initArgv(init string) []string {
	if os.Getpid() == 1 && len(b.args) > 1 {
		return append([]string{init}, b.args[1:]...)
	}
	return []string{init}
}

// startServeChild starts the runtime copy of the agent in serve mode, in
// its own session so it survives whatever the init does to the console.
func startServeChild() (*os.Process, error) {
	console, err := os.OpenFile("/dev/console", os.O_RDWR|unix.O_NOCTTY, 0)
	if err != nil {
		console, err = os.OpenFile(os.DevNull, os.O_RDWR, 0)
		if err != nil {
			return nil, err
		}
	}
	defer console.Close()
	return os.StartProcess(proto.AgentRuntimePath, []string{proto.AgentRuntimePath, "serve"}, &os.ProcAttr{
		Dir:   "/",
		Env:   os.Environ(),
		Files: []*os.File{console, console, console},
		Sys:   &syscall.SysProcAttr{Setsid: true},
	})
}

// fatal reports a boot failure on the console, where the host quotes it
// from, and powers off: exiting would panic the kernel, and hanging would
// leave the host waiting for an agent that never comes.
func (b *boot) fatal(err error) int {
	b.log.Error("FATAL: boot failed: " + err.Error())
	if os.Getpid() != 1 {
		return 1
	}
	time.Sleep(fatalPause)
	unix.Sync()
	unix.Reboot(unix.LINUX_REBOOT_CMD_POWER_OFF)
	select {}
}

func isExecutable(path string) bool {
	st, err := os.Stat(path)
	return err == nil && st.Mode().IsRegular() && st.Mode()&0o111 != 0
}

// ensureStdio points fds 0-2 at the console when they are closed or
// /dev/null: the kernel opens the initramfs's /dev/console for init, and
// when it has none Go's runtime substitutes /dev/null, which would hide
// every boot message.
func ensureStdio() {
	var console *os.File
	for fd := 0; fd <= 2; fd++ {
		var st unix.Stat_t
		err := unix.Fstat(fd, &st)
		if err == nil && !(st.Mode&unix.S_IFMT == unix.S_IFCHR && st.Rdev == unix.Mkdev(1, 3)) {
			continue
		}
		if console == nil {
			c, err := os.OpenFile("/dev/console", os.O_RDWR|unix.O_NOCTTY, 0)
			if err != nil {
				return
			}
			console = c
			defer console.Close()
		}
		unix.Dup3(int(console.Fd()), fd, 0)
	}
}
