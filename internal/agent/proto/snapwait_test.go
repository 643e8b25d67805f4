package proto

import (
	"bytes"
	"strings"
	"testing"
	"time"
)

func TestContinueRoundTrip(t *testing.T) {
	c := Continue{Time: time.Unix(1796306434, 123456789), Entropy: bytes.Repeat([]byte{0xab, 0x01}, 32)}
	line := c.Line()
	if !bytes.HasPrefix(line, []byte(ContinuePrefix+"1 1796306434123456789 ab01")) || !bytes.HasSuffix(line, []byte("\n")) {
		t.Fatalf("line %q", line)
	}
	got, err := ParseContinue(strings.TrimSuffix(strings.TrimPrefix(string(line), ContinuePrefix), "\n"))
	if err != nil {
		t.Fatal(err)
	}
	if !got.Time.Equal(c.Time) || !bytes.Equal(got.Entropy, c.Entropy) {
		t.Errorf("got %+v", got)
	}
}

func TestParseContinueRejects(t *testing.T) {
	e64 := strings.Repeat("ab", 64)
	for _, c := range []struct{ in, want string }{
		{"", "0 fields"},
		{"1 5", "2 fields"},
		{"2 5 " + e64, "version"},
		{"x 5 " + e64, "version"},
		{"1 -5 " + e64, "bad time"},
		{"1 now " + e64, "bad time"},
		{"1 5 zz", "bad entropy"},
		{"1 5 abab", "2 bytes of entropy"},
		{"1 5 " + strings.Repeat("ab", 513), "513 bytes"},
		{"1 5 " + e64 + " extra", "4 fields"},
	} {
		if _, err := ParseContinue(c.in); err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%q: err = %v, want %q", c.in, err, c.want)
		}
	}
}

func TestHasSnapWait(t *testing.T) {
	if !HasSnapWait("console=ttyS0 quiet banger.snapwait\n") || HasSnapWait("banger.snapwaitx quiet") || HasSnapWait("") {
		t.Error("HasSnapWait")
	}
}
