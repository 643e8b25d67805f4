package cli

import (
	"fmt"
	"strings"
	"time"

	"github.com/banger-dev/banger/internal/api"
)

// bytesPrinter renders progress for pulls and exports. Counting events
// (Unit set: Done of Total) get a bar on a terminal and, in logs, one
// plain line every few seconds (the daemon sends one a second); every
// other event, a stage's closing line included, goes through
// progressPrinter.
func bytesPrinter(ios *iostreams) (func(api.Progress), func()) {
	show, done := progressPrinter(ios)
	tty := ios.isStderrTTY()
	lastLine := map[string]time.Time{}
	return func(p api.Progress) {
		if p.Unit == "" {
			show(p)
			return
		}
		if tty {
			show(api.Progress{Stage: p.Stage, Elapsed: p.Elapsed, Message: withBar(p)})
			return
		}
		if time.Since(lastLine[p.Stage]) < 5*time.Second {
			return
		}
		lastLine[p.Stage] = time.Now()
		show(p)
	}, done
}

// withBar is a counting event's message after a bar of Done/Total (none
// while the total is unknown).
func withBar(p api.Progress) string {
	if p.Total <= 0 {
		return p.Message
	}
	return bar(int(min(100, max(0, p.Done)*100/p.Total)), 20) + " " + p.Message
}

// bar draws "[#####.....]" for pct percent in width cells.
func bar(pct, width int) string {
	n := max(0, min(width, pct*width/100))
	return "[" + strings.Repeat("#", n) + strings.Repeat(".", width-n) + "]"
}

// printNotes shows what a pull or promote had to say about the image.
func printNotes(ios *iostreams, notes []string) {
	for _, n := range notes {
		fmt.Fprintln(ios.Err, "note:", escText(n))
	}
}
