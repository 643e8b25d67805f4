package cli

import (
	"fmt"
	"regexp"
	"strconv"
	"strings"
	"time"

	"github.com/banger-dev/banger/internal/api"
)

var pctRE = regexp.MustCompile(`\((\d{1,3})%\)`)

// bytesPrinter renders progress for pulls and exports. The byte-counting
// stages (api.StageDownload and friends) get a bar on a terminal and, in
// logs, one plain line every few seconds (the daemon sends one a second);
// every other event goes through progressPrinter.
func bytesPrinter(env *Env) (func(api.Progress), func()) {
	show, done := progressPrinter(env)
	tty := env.isTTY()
	lastLine := map[string]time.Time{}
	return func(p api.Progress) {
		switch p.Stage {
		case api.StageDownload, api.StageFlatten, api.StageExport:
		default:
			show(p)
			return
		}
		m := pctRE.FindStringSubmatch(p.Message)
		if m == nil { // a stage's closing line
			show(p)
			return
		}
		if tty {
			pct, _ := strconv.Atoi(m[1])
			show(api.Progress{Stage: p.Stage, Elapsed: p.Elapsed, Message: bar(pct, 20) + " " + p.Message})
			return
		}
		if time.Since(lastLine[p.Stage]) < 5*time.Second {
			return
		}
		lastLine[p.Stage] = time.Now()
		show(p)
	}, done
}

// bar draws "[#####.....]" for pct percent in width cells.
func bar(pct, width int) string {
	n := max(0, min(width, pct*width/100))
	return "[" + strings.Repeat("#", n) + strings.Repeat(".", width-n) + "]"
}

// printNotes shows what a pull or promote had to say about the image.
func printNotes(env *Env, notes []string) {
	for _, n := range notes {
		fmt.Fprintln(env.Err, "note:", escText(n))
	}
}
