package cli

import (
	"bytes"
	"strings"
	"testing"

	"github.com/banger-dev/banger/internal/api"
)

// Without a terminal, byte progress (one event a second from the daemon)
// is thinned to a line every few seconds; other stages and a stage's
// closing line always print.
func TestBytesPrinterPlain(t *testing.T) {
	var errb bytes.Buffer
	show, done := bytesPrinter(&Env{Err: &errb})
	for i := 0; i < 10; i++ {
		show(api.Progress{Stage: api.StageDownload, Message: "layers: 1 MiB / 10 MiB (10%) · 1 MiB/s · ETA 9s"})
	}
	show(api.Progress{Stage: api.StageDownload, Message: "layers: 10 MiB in 10s (1 MiB/s)"})
	show(api.Progress{Stage: "note", Message: "no sshd"})
	done()
	out := errb.String()
	if n := strings.Count(out, "(10%)"); n != 1 {
		t.Errorf("%d progress lines, want 1:\n%s", n, out)
	}
	if !strings.Contains(out, "in 10s") || !strings.Contains(out, "note: no sshd") {
		t.Errorf("closing line or note missing:\n%s", out)
	}
	if got := bar(45, 20); got != "[#########...........]" {
		t.Errorf("bar(45) = %q", got)
	}
}
