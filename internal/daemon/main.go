package daemon

import (
	"context"
	"fmt"
	"log/slog"
	"os"
	"os/signal"
	"syscall"

	"github.com/banger-dev/banger/internal/config"
)

// Main runs bangerd in the foreground and returns its exit code. It logs
// structured lines to stderr (the CLI points stderr at bangerd.log).
func Main() int {
	log := slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelInfo}))
	paths, err := config.DefaultPaths()
	if err != nil {
		log.Error("paths", "err", err)
		fmt.Fprintln(os.Stderr, "bangerd:", err)
		return 1
	}
	cfg, err := config.Load(paths.ConfigFile())
	if err != nil {
		log.Error("config", "err", err)
		fmt.Fprintln(os.Stderr, "bangerd:", err)
		return 1
	}
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGINT, syscall.SIGTERM)
	defer stop()
	d, err := New(ctx, Options{Paths: paths, Config: cfg, Log: log})
	if err != nil {
		log.Error("start", "err", err)
		fmt.Fprintln(os.Stderr, "bangerd:", err)
		return 1
	}
	if err := d.Run(ctx); err != nil {
		log.Error("serve", "err", err)
		fmt.Fprintln(os.Stderr, "bangerd:", err) // the CLI quotes this line when a start fails
		return 1
	}
	return 0
}
