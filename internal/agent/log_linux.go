package agent

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"strconv"
	"strings"
	"sync"

	"golang.org/x/sys/unix"
)

// consoleHandler writes slog records as single console lines stamped with
// the time since boot, like the kernel's own messages, so that boot
// timing can be read straight from the serial log:
//
//	[    1.234567] banger-agent: root mounted took=12ms
type consoleHandler struct {
	mu    *sync.Mutex
	w     io.Writer
	attrs string // preformatted " k=v" pairs from WithAttrs
}

func newConsoleLogger(w io.Writer) *slog.Logger {
	return slog.New(&consoleHandler{mu: new(sync.Mutex), w: w})
}

func (h *consoleHandler) Enabled(_ context.Context, l slog.Level) bool {
	return l >= slog.LevelInfo
}

func (h *consoleHandler) Handle(_ context.Context, r slog.Record) error {
	var b strings.Builder
	fmt.Fprintf(&b, "[%12.6f] banger-agent: ", sinceBoot())
	if r.Level >= slog.LevelWarn {
		b.WriteString(r.Level.String() + ": ")
	}
	b.WriteString(r.Message)
	b.WriteString(h.attrs)
	r.Attrs(func(a slog.Attr) bool {
		writeAttr(&b, a)
		return true
	})
	b.WriteByte('\n')
	h.mu.Lock()
	defer h.mu.Unlock()
	// One write per line keeps lines whole on a shared console.
	_, err := io.WriteString(h.w, b.String())
	return err
}

func (h *consoleHandler) WithAttrs(as []slog.Attr) slog.Handler {
	var b strings.Builder
	for _, a := range as {
		writeAttr(&b, a)
	}
	return &consoleHandler{mu: h.mu, w: h.w, attrs: h.attrs + b.String()}
}

func (h *consoleHandler) WithGroup(string) slog.Handler { return h }

func writeAttr(b *strings.Builder, a slog.Attr) {
	v := a.Value.Resolve().String()
	if v == "" || strings.ContainsAny(v, " \t\"=") {
		v = strconv.Quote(v)
	}
	b.WriteString(" " + a.Key + "=" + v)
}

// sinceBoot is CLOCK_MONOTONIC in seconds, which starts near the kernel's
// printk clock.
func sinceBoot() float64 {
	var ts unix.Timespec
	if unix.ClockGettime(unix.CLOCK_MONOTONIC, &ts) != nil {
		return 0
	}
	return float64(ts.Sec) + float64(ts.Nsec)/1e9
}
