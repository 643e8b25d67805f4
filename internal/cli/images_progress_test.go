package cli

import (
	"bytes"
	"encoding/json"
	"strings"
	"testing"

	"github.com/banger-dev/banger/internal/api"
)

// Without a terminal, counting events (one a second from the daemon) are
// thinned to a line every few seconds; other stages and a stage's closing
// line always print. Nothing is read out of the message text.
func TestBytesPrinterPlain(t *testing.T) {
	var errb bytes.Buffer
	show, done := bytesPrinter(&iostreams{Err: &errb})
	for i := 0; i < 10; i++ {
		show(api.Progress{Stage: api.StageDownload, Message: "layers: 1 MiB / 10 MiB · 1 MiB/s · ETA 9s",
			Done: 1 << 20, Total: 10 << 20, Unit: api.UnitBytes})
	}
	show(api.Progress{Stage: api.StageDownload, Message: "layers: 10 MiB in 10s (1 MiB/s)"})
	show(api.Progress{Stage: "note", Message: "no sshd"})
	// A percentage in the text of an event without counts means nothing.
	show(api.Progress{Stage: api.StageFlatten, Message: "step (50%)"})
	show(api.Progress{Stage: api.StageFlatten, Message: "step (50%)"})
	done()
	out := errb.String()
	if n := strings.Count(out, "1 MiB / 10 MiB"); n != 1 {
		t.Errorf("%d progress lines, want 1:\n%s", n, out)
	}
	if !strings.Contains(out, "in 10s") || !strings.Contains(out, "note: no sshd") || strings.Count(out, "step (50%)") != 2 {
		t.Errorf("closing line, note or uncounted events missing:\n%s", out)
	}
}

func TestProgressBarFromCounts(t *testing.T) {
	for _, c := range []struct {
		p    api.Progress
		want string
	}{
		{api.Progress{Message: "m", Done: 45, Total: 100, Unit: api.UnitBytes}, "[#########...........] m"},
		{api.Progress{Message: "m", Done: 0, Total: 7, Unit: api.UnitBytes}, "[....................] m"},
		{api.Progress{Message: "m", Done: 9, Total: 7, Unit: api.UnitBytes}, "[####################] m"},
		{api.Progress{Message: "m (45%)", Done: 3, Unit: api.UnitBytes}, "m (45%)"}, // total unknown: no bar
	} {
		if got := withBar(c.p); got != c.want {
			t.Errorf("withBar(%+v) = %q, want %q", c.p, got, c.want)
		}
	}
}

// The counts are new fields: an event without them encodes as before, so
// an older CLI or daemon reads the other's events unchanged.
func TestProgressWireCompatible(t *testing.T) {
	b, _ := json.Marshal(api.Progress{Stage: "boot", Message: "agent", Elapsed: 1.5})
	if string(b) != `{"stage":"boot","message":"agent","elapsed":1.5}` {
		t.Errorf("plain event encodes as %s", b)
	}
	var p api.Progress
	if err := json.Unmarshal([]byte(`{"stage":"download","message":"x","elapsed":2,"done":5,"total":10,"unit":"bytes"}`), &p); err != nil ||
		p.Done != 5 || p.Total != 10 || p.Unit != api.UnitBytes {
		t.Errorf("counting event decodes as %+v (%v)", p, err)
	}
}
