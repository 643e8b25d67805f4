package agent

import (
	"context"
	"log/slog"
	"os"
	"os/signal"
	"path/filepath"
	"strconv"
	"time"

	"golang.org/x/sys/unix"
)

// termGrace is how long processes get to exit on SIGTERM before the agent,
// as PID 1, kills the rest and powers off.
const termGrace = 2 * time.Second

// runAsPID1 keeps the agent as init for an image without one: it reaps
// every process, serves the host in-process and turns SIGTERM, SIGINT
// (ctrl-alt-del) and SIGPWR into a clean power-off. It never returns.
func runAsPID1(log *slog.Logger) {
	r := newReaper()
	ctx := context.Background()
	go r.Run(ctx)
	// Go exits on these by default, and PID 1 exiting panics the kernel.
	signal.Ignore(unix.SIGHUP, unix.SIGQUIT, unix.SIGUSR1, unix.SIGUSR2)
	sigs := make(chan os.Signal, 1)
	signal.Notify(sigs, unix.SIGTERM, unix.SIGINT, unix.SIGPWR)
	go func() {
		sig := <-sigs
		log.Info("power-off signal", "signal", sig.String())
		shutdownAsPID1(log)
	}()
	srv := &Server{Log: log, PowerOff: func() { shutdownAsPID1(log) }, procs: r, Guest: true}
	log.Info("serving as PID 1")
	srv.Run(ctx)
	select {}
}

// shutdownAsPID1 is what an init does at power-off: ask everything to
// stop, kill what remains, flush the disks, power off.
func shutdownAsPID1(log *slog.Logger) {
	log.Info("stopping all processes")
	unix.Kill(-1, unix.SIGTERM)
	deadline := time.Now().Add(termGrace)
	for time.Now().Before(deadline) && userProcessesLeft() {
		time.Sleep(50 * time.Millisecond)
	}
	unix.Kill(-1, unix.SIGKILL)
	unix.Sync()
	log.Info("powering off")
	unix.Reboot(unix.LINUX_REBOOT_CMD_POWER_OFF)
	select {} // PID 1 must not exit: that panics the kernel
}

// userProcessesLeft reports whether any process other than this one is
// still running. Kernel threads and zombies have an empty cmdline.
func userProcessesLeft() bool {
	dirs, _ := filepath.Glob("/proc/[0-9]*")
	self := os.Getpid()
	for _, d := range dirs {
		pid, err := strconv.Atoi(filepath.Base(d))
		if err != nil || pid == self {
			continue
		}
		if b, err := os.ReadFile(d + "/cmdline"); err == nil && len(b) > 0 {
			return true
		}
	}
	return false
}
