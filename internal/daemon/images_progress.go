package daemon

import (
	"context"
	"fmt"
	"sync"
	"time"

	"github.com/banger-dev/banger/internal/api"
	"github.com/banger-dev/banger/internal/config"
	"github.com/banger-dev/banger/internal/rpc"
)

// eventsKey carries, in a request's context, the sender of whole progress
// events (api.Progress with counts): progressFn has room for text only.
type eventsKey struct{}

// withProgressEvents gives every handler's context its call's sender.
func withProgressEvents(h rpc.Handler) rpc.Handler {
	return func(ctx context.Context, c *rpc.Call) (any, error) {
		return h(context.WithValue(ctx, eventsKey{}, c.Send), c)
	}
}

// byteProgress turns byte counts into progress events: at most one a
// second (a CLI without a terminal prints each as a line), each with
// Done/Total in bytes and a message with bytes, rate and ETA, as
// api.StageDownload documents.
type byteProgress struct {
	mu       sync.Mutex
	progress progressFn
	send     func(api.Progress) // nil: text only, through progress
	stage    string
	what     string
	start    time.Time
	last     time.Time
	done     int64
	total    int64
	interval time.Duration
}

func newByteProgress(ctx context.Context, p progressFn, stage, what string) *byteProgress {
	send, _ := ctx.Value(eventsKey{}).(func(api.Progress))
	return &byteProgress{progress: p, send: send, stage: stage, what: what, start: time.Now(), interval: time.Second}
}

// update records done of total bytes (total 0 = unknown).
func (b *byteProgress) update(done, total int64) {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.done, b.total = done, total
	now := time.Now()
	if now.Sub(b.last) < b.interval && !(total > 0 && done >= total && b.last.IsZero()) {
		return
	}
	b.last = now
	msg := formatBytesProgress(b.what, done, total, now.Sub(b.start))
	if b.send == nil {
		b.progress(b.stage, msg)
		return
	}
	b.send(api.Progress{Stage: b.stage, Message: msg, Done: done, Total: max(total, 0), Unit: api.UnitBytes})
}

// finish sends the closing line of the stage.
func (b *byteProgress) finish() {
	b.mu.Lock()
	defer b.mu.Unlock()
	el := time.Since(b.start)
	b.progress(b.stage, fmt.Sprintf("%s: %s in %s (%s/s)", b.what, config.FormatSize(b.done),
		el.Round(100*time.Millisecond), config.FormatSize(rate(b.done, el))))
}

func rate(n int64, el time.Duration) int64 {
	if el <= 0 {
		return 0
	}
	return int64(float64(n) / el.Seconds())
}

// formatBytesProgress renders "WHAT: DONE / TOTAL (PCT%) · RATE/s · ETA T".
func formatBytesProgress(what string, done, total int64, el time.Duration) string {
	r := rate(done, el)
	if total <= 0 {
		return fmt.Sprintf("%s: %s · %s/s", what, config.FormatSize(done), config.FormatSize(r))
	}
	pct := min(100, done*100/max(total, 1))
	eta := "?"
	if r > 0 {
		eta = (time.Duration(float64(total-done)/float64(r)) * time.Second).Round(time.Second).String()
	}
	return fmt.Sprintf("%s: %s / %s (%d%%) · %s/s · ETA %s", what, config.FormatSize(done), config.FormatSize(total), pct, config.FormatSize(r), eta)
}
