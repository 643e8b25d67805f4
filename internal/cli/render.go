package cli

import (
	"fmt"
	"io"
	"strings"
	"text/tabwriter"
	"unicode"
	"unicode/utf8"
)

// escCell renders text that came from the daemon or a guest (names, a
// guest's process names, image config, error messages) for a terminal:
// control characters (ESC, CR, BEL, tabs and newlines, C1 controls),
// bidirectional overrides and invalid UTF-8 are written as visible
// escapes (\x1b, \r, \u202e) instead of being sent raw, so a guest
// cannot move the cursor, rewrite lines or retitle the window through a
// table. --json output needs none of this: encoding/json escapes.
func escCell(s string) string { return escapeControls(s, false) }

// escText is escCell for free text, where newlines and tabs are kept.
func escText(s string) string { return escapeControls(s, true) }

func escapeControls(s string, keepLayout bool) string {
	clean := utf8.ValidString(s)
	for _, r := range s {
		if needsEscape(r, keepLayout) {
			clean = false
			break
		}
	}
	if clean {
		return s
	}
	var b strings.Builder
	for i := 0; i < len(s); {
		r, n := utf8.DecodeRuneInString(s[i:])
		switch {
		case r == utf8.RuneError && n == 1:
			fmt.Fprintf(&b, `\x%02x`, s[i])
		case !needsEscape(r, keepLayout):
			b.WriteString(s[i : i+n])
		case r == '\a':
			b.WriteString(`\a`)
		case r == '\b':
			b.WriteString(`\b`)
		case r == '\f':
			b.WriteString(`\f`)
		case r == '\n':
			b.WriteString(`\n`)
		case r == '\r':
			b.WriteString(`\r`)
		case r == '\t':
			b.WriteString(`\t`)
		case r == '\v':
			b.WriteString(`\v`)
		case r < 0x80:
			fmt.Fprintf(&b, `\x%02x`, r)
		default:
			fmt.Fprintf(&b, `\u%04x`, r)
		}
		i += n
	}
	return b.String()
}

func needsEscape(r rune, keepLayout bool) bool {
	if keepLayout && (r == '\n' || r == '\t') {
		return false
	}
	return unicode.IsControl(r) || unicode.Is(unicode.Bidi_Control, r) ||
		r == '\u2028' || r == '\u2029'
}

// table is a tabwriter whose cells are escaped with escCell: every
// table and show renderer writes through it.
type table struct{ tw *tabwriter.Writer }

func newTable(w io.Writer) *table { return &table{tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)} }

// row writes one line of cells.
func (t *table) row(cells ...string) {
	for i, c := range cells {
		cells[i] = escCell(c)
	}
	fmt.Fprintln(t.tw, strings.Join(cells, "\t"))
}

// kv writes a "key:" line; the key is banger's own.
func (t *table) kv(key, value string) { fmt.Fprintf(t.tw, "%s:\t%s\n", key, escCell(value)) }

func (t *table) flush() error { return t.tw.Flush() }

// printf is fmt.Fprintf with every string argument escaped by escCell:
// for result lines that carry names and paths from the daemon.
func printf(w io.Writer, format string, a ...any) {
	for i, v := range a {
		if s, ok := v.(string); ok {
			a[i] = escCell(s)
		}
	}
	fmt.Fprintf(w, format, a...)
}
