package agent

import (
	"context"
	"log/slog"
	"os"
	"os/exec"
	"os/signal"
	"time"

	"golang.org/x/sys/unix"
)

// runServe is `banger-agent serve`: the copy of the agent that keeps
// serving the host after init has handed PID 1 to the image's init.
func runServe() int {
	log := newConsoleLogger(os.Stderr)
	ensurePath()
	ctx, stop := signal.NotifyContext(context.Background(), unix.SIGTERM, unix.SIGINT)
	defer stop()
	log.Info("serving", "version", Version, "pid", os.Getpid())
	srv := &Server{Log: log, PowerOff: func() { powerOff(log) }, Guest: true}
	srv.Run(ctx)
	return 0
}

// sigRTMin is glibc's SIGRTMIN (the kernel's is 32; glibc keeps two for
// threads). systemd reads SIGRTMIN+4 as "power off".
const sigRTMin = unix.Signal(34)

// powerOff asks PID 1 to shut the guest down cleanly, or does it directly
// when PID 1 offers no way.
func powerOff(log *slog.Logger) {
	unix.Sync()
	if os.Getpid() == 1 {
		shutdownAsPID1(log)
		return
	}
	if pid1Name() == "systemd" {
		// systemctl fails while systemd is still starting up; then
		// the signal, which needs no bus, does the same.
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		err := exec.CommandContext(ctx, "systemctl", "poweroff", "--no-block").Run()
		cancel()
		if err == nil {
			return
		}
		log.Warn("systemctl poweroff failed", "err", err)
		if err := unix.Kill(1, sigRTMin+4); err == nil {
			return
		}
	}
	log.Info("powering off")
	if err := unix.Reboot(unix.LINUX_REBOOT_CMD_POWER_OFF); err != nil {
		log.Error("power off failed", "err", err)
	}
}

// ensurePath gives the agent a PATH: the kernel starts init without one,
// and helpers such as systemctl are found through it.
func ensurePath() {
	if os.Getenv("PATH") == "" {
		os.Setenv("PATH", defaultPath)
	}
}
