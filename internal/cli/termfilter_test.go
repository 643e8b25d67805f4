package cli

import (
	"bytes"
	"testing"
)

func TestConsoleFilter(t *testing.T) {
	for _, tc := range []struct{ in, want string }{
		{"plain\ttext\r\n", "plain\ttext\n"},
		{"\x1b[1;32mgreen\x1b[0m", "\x1b[1;32mgreen\x1b[0m"},
		{"\x1b[2J\x1b[Hcleared", "cleared"},                      // screen clear, cursor home
		{"\x1b]0;pwned title\x07after", "after"},                 // OSC title (BEL)
		{"\x1b]8;;http://x\x1b\\link\x1b]8;;\x1b\\", "link"},     // OSC hyperlink (ST)
		{"\x1bPdevice control\x1b\\x", "x"},                      // DCS
		{"\x1b[6n\x1b[>c\x1b[?1049h", ""},                        // queries, alternate screen
		{"a\x1bcb", "ab"},                                        // ESC c: reset
		{"bell\x07 bs\x08 del\x7f", "bell bs del"},               // C0 controls
		{"\xc2\x9b31mC1 CSI", "31mC1 CSI"},                       // C1 CSI in UTF-8
		{"caf\xc3\xa9 \xc2\xa0nbsp", "caf\xc3\xa9 \xc2\xa0nbsp"}, // other UTF-8 intact
		{"\x1b[" + string(bytes.Repeat([]byte("1;"), 100)) + "mlong", "long"},
	} {
		var out bytes.Buffer
		f := &consoleFilter{w: &out}
		f.Write([]byte(tc.in))
		if out.String() != tc.want {
			t.Errorf("%q: got %q, want %q", tc.in, out.String(), tc.want)
		}
		// Byte by byte: sequences split across writes are handled alike.
		out.Reset()
		f = &consoleFilter{w: &out}
		for i := range len(tc.in) {
			f.Write([]byte{tc.in[i]})
		}
		if out.String() != tc.want {
			t.Errorf("%q byte by byte: got %q, want %q", tc.in, out.String(), tc.want)
		}
	}
}
