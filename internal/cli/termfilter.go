package cli

import "io"

// consoleFilter makes a guest's console output safe for a terminal while
// keeping its colours: newlines, tabs and SGR sequences (ESC [ digits ;
// m) pass; every other control character, escape sequence (cursor moves,
// screen clears, OSC titles and hyperlinks, device queries whose answers
// a terminal would type back) and C1 control is dropped. It keeps its
// state across writes, as sequences can be split between them.
type consoleFilter struct {
	w     io.Writer
	state int
	seq   []byte // the CSI sequence so far
	c2    bool   // a 0xC2 byte is pending (C1 controls are C2 80..9F in UTF-8)
	out   []byte
}

const (
	stNormal = iota
	stEsc    // after ESC
	stCSI    // ESC [ ...
	stString // OSC, DCS, APC, PM, SOS: skipped up to BEL or ESC \
	stStrEsc // ESC inside a string
)

// maxSeq bounds a CSI sequence kept for inspection; longer ones are
// dropped.
const maxSeq = 64

func (f *consoleFilter) Write(p []byte) (int, error) {
	f.out = f.out[:0]
	for _, b := range p {
		f.byte(b)
	}
	if len(f.out) > 0 {
		if _, err := f.w.Write(f.out); err != nil {
			return 0, err
		}
	}
	return len(p), nil
}

func (f *consoleFilter) byte(b byte) {
	switch f.state {
	case stEsc:
		switch b {
		case '[':
			f.state, f.seq = stCSI, append(f.seq[:0], 0x1b, '[')
		case ']', 'P', '_', '^', 'X':
			f.state = stString
		default:
			f.state = stNormal // a two-byte sequence (ESC c resets the terminal): dropped
		}
		return
	case stCSI:
		switch {
		case b >= 0x30 && b <= 0x3f || b >= 0x20 && b <= 0x2f:
			if len(f.seq) < maxSeq {
				f.seq = append(f.seq, b)
			}
			return
		case b >= 0x40 && b <= 0x7e:
			if b == 'm' && len(f.seq) < maxSeq && sgrParams(f.seq[2:]) {
				f.out = append(append(f.out, f.seq...), 'm')
			}
			f.state = stNormal
			return
		}
		f.state = stNormal // broken sequence: dropped, the byte is handled below
	case stString:
		if b == 0x07 {
			f.state = stNormal
		} else if b == 0x1b {
			f.state = stStrEsc
		}
		return
	case stStrEsc:
		if b == '\\' {
			f.state = stNormal
		} else if b != 0x1b {
			f.state = stString
		}
		return
	}
	if f.c2 {
		f.c2 = false
		if b >= 0x80 && b <= 0x9f {
			return // a C1 control
		}
		f.out = append(f.out, 0xc2)
	}
	switch {
	case b == 0x1b:
		f.state = stEsc
	case b == 0xc2:
		f.c2 = true
	case b == '\n' || b == '\t':
		f.out = append(f.out, b)
	case b < 0x20 || b == 0x7f:
		// dropped (\r included: console lines end in \r\n)
	default:
		f.out = append(f.out, b)
	}
}

// sgrParams reports whether a CSI's parameters are those of a colour
// sequence: digits, ';' and ':' only.
func sgrParams(p []byte) bool {
	for _, c := range p {
		if (c < '0' || c > '9') && c != ';' && c != ':' {
			return false
		}
	}
	return true
}
