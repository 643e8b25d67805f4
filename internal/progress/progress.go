// Package progress is how a long operation reports its stages: one small
// interface that services, image and kernel code report through, and that
// each transport turns into its own events (the unix socket's progress
// lines, later an HTTP stream).
package progress

import (
	"fmt"
	"sync"
	"time"

	"github.com/banger-dev/banger/internal/api"
	"github.com/banger-dev/banger/internal/config"
)

// Reporter receives one operation's progress events. Report must not
// block: the client may have stopped reading, and the work goes on.
type Reporter interface {
	Report(api.Progress)
}

// Func adapts a function to a Reporter; a nil Func discards.
type Func func(api.Progress)

// Report calls f.
func (f Func) Report(p api.Progress) {
	if f != nil {
		f(p)
	}
}

// Discard drops every event.
var Discard Reporter = Func(nil)

// Or returns r, or Discard when r is nil.
func Or(r Reporter) Reporter {
	if r == nil {
		return Discard
	}
	return r
}

// Stage reports a stage with a message (api.Stage* names the stages).
func Stage(r Reporter, stage, msg string) {
	Or(r).Report(api.Progress{Stage: stage, Message: msg})
}

// Bytes turns byte counts into progress events: at most one a second (a
// CLI without a terminal prints each as a line), each with Done/Total in
// bytes and a message with bytes, rate and ETA, as api.StageDownload
// documents. Safe for concurrent use.
type Bytes struct {
	mu       sync.Mutex
	r        Reporter
	stage    string
	what     string
	start    time.Time
	last     time.Time
	done     int64
	total    int64
	interval time.Duration
}

// NewBytes starts counting the bytes of stage; what names them ("rootfs").
func NewBytes(r Reporter, stage, what string) *Bytes {
	return &Bytes{r: Or(r), stage: stage, what: what, start: time.Now(), interval: time.Second}
}

// Update records done of total bytes (total 0: unknown).
func (b *Bytes) Update(done, total int64) {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.done, b.total = done, total
	now := time.Now()
	if now.Sub(b.last) < b.interval && !(total > 0 && done >= total && b.last.IsZero()) {
		return
	}
	b.last = now
	msg := FormatBytes(b.what, done, total, now.Sub(b.start))
	b.r.Report(api.Progress{Stage: b.stage, Message: msg, Done: done, Total: max(total, 0), Unit: api.UnitBytes})
}

// Finish reports the closing line of the stage.
func (b *Bytes) Finish() {
	b.mu.Lock()
	defer b.mu.Unlock()
	el := time.Since(b.start)
	Stage(b.r, b.stage, fmt.Sprintf("%s: %s in %s (%s/s)", b.what, config.FormatSize(b.done),
		el.Round(100*time.Millisecond), config.FormatSize(rate(b.done, el))))
}

func rate(n int64, el time.Duration) int64 {
	if el <= 0 {
		return 0
	}
	return int64(float64(n) / el.Seconds())
}

// FormatBytes renders "WHAT: DONE / TOTAL (PCT%) · RATE/s · ETA T".
func FormatBytes(what string, done, total int64, el time.Duration) string {
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
