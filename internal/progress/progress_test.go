package progress

import (
	"strings"
	"testing"
	"time"

	"github.com/banger-dev/banger/internal/api"
)

func TestBytesReportsCountsAndFinish(t *testing.T) {
	var got []api.Progress
	b := NewBytes(Func(func(p api.Progress) { got = append(got, p) }), api.StageDownload, "rootfs")
	b.Update(10, 100) // first event goes out at once
	b.Update(20, 100) // within the interval: dropped
	b.Finish()
	if len(got) != 2 {
		t.Fatalf("events = %+v, want the first update and the finish", got)
	}
	if got[0].Done != 10 || got[0].Total != 100 || got[0].Unit != api.UnitBytes || !strings.Contains(got[0].Message, "(10%)") {
		t.Errorf("update event = %+v", got[0])
	}
	if got[1].Unit != "" || !strings.HasPrefix(got[1].Message, "rootfs: 20") {
		t.Errorf("finish event = %+v", got[1])
	}
}

func TestFormatBytesUnknownTotal(t *testing.T) {
	if m := FormatBytes("x", 2048, 0, time.Second); strings.Contains(m, "ETA") || !strings.HasPrefix(m, "x: ") {
		t.Errorf("FormatBytes = %q", m)
	}
}

func TestNilReporterDiscards(t *testing.T) {
	Stage(nil, "s", "m") // must not panic
	var f Func
	f.Report(api.Progress{})
}
