package mcpserver

import (
	"fmt"
	"strings"
	"unicode/utf8"
)

// clipBuffer keeps the first and the last half of at most limit bytes
// written to it, and counts the rest: a command's output stays bounded,
// and both its start and its end (where the errors usually are) survive.
type clipBuffer struct {
	limit int
	head  []byte
	tail  []byte // a ring of limit-limit/2 bytes once head is full
	pos   int    // next write position in tail
	full  bool   // tail has wrapped
	n     int64  // bytes written in all
}

func newClipBuffer(limit int) *clipBuffer { return &clipBuffer{limit: limit} }

func (b *clipBuffer) Write(p []byte) (int, error) {
	b.n += int64(len(p))
	n := len(p)
	if room := b.limit/2 - len(b.head); room > 0 {
		c := min(room, len(p))
		b.head = append(b.head, p[:c]...)
		p = p[c:]
	}
	size := b.limit - b.limit/2
	for len(p) > 0 && size > 0 {
		if len(b.tail) < size {
			c := min(size-len(b.tail), len(p))
			b.tail = append(b.tail, p[:c]...)
			p = p[c:]
			continue
		}
		// Only the last size bytes of p can survive.
		if len(p) > size {
			p = p[len(p)-size:]
		}
		c := copy(b.tail[b.pos:], p)
		b.pos = (b.pos + c) % size
		if c > 0 {
			b.full = true
		}
		p = p[c:]
	}
	return n, nil
}

// Truncated says whether bytes were dropped.
func (b *clipBuffer) Truncated() bool { return b.n > int64(b.limit) }

// String is what was kept, with a marker where bytes were cut. Invalid
// UTF-8 (binary output, or a character cut at the seam) is replaced.
func (b *clipBuffer) String() string {
	tail := b.tail
	if b.full {
		tail = append(append([]byte{}, b.tail[b.pos:]...), b.tail[:b.pos]...)
	}
	if !b.Truncated() {
		return strings.ToValidUTF8(string(b.head)+string(tail), "\uFFFD")
	}
	mark := fmt.Sprintf("\n[… %d bytes cut …]\n", b.n-int64(len(b.head)+len(tail)))
	return strings.ToValidUTF8(string(b.head), "\uFFFD") + mark + strings.ToValidUTF8(trimRuneStart(tail), "\uFFFD")
}

// trimRuneStart drops continuation bytes a cut left at the start.
func trimRuneStart(p []byte) string {
	for i := 0; i < len(p) && i < utf8.UTFMax; i++ {
		if utf8.RuneStart(p[i]) {
			return string(p[i:])
		}
	}
	return string(p)
}
