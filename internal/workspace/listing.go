package workspace

import (
	"fmt"
	"io"
	"strconv"
	"strings"
	"unicode"
)

// WriteListing prints, one per line, every file the plan copies: the
// mode it gets in the guest, where it comes from, and its path (quoted when it holds
// characters a terminal would interpret).
func (p *Plan) WriteListing(w io.Writer) error {
	for _, f := range p.Files() {
		from := "commit"
		switch {
		case f.Untracked:
			from = "untracked"
		case f.Mode == ModeSubmodule:
			from = "submodule"
		}
		if _, err := fmt.Fprintf(w, "%06o %-9s %s\n", f.GuestMode(), from, QuotePath(f.Path)); err != nil {
			return err
		}
	}
	return nil
}

// Summary is one line about the plan: counts, size and the commit.
func (p *Plan) Summary() string {
	top := p.Top()
	n := len(p.Files())
	what := "no commits yet"
	if top.Commit != "" {
		what = "commit " + top.Commit[:min(12, len(top.Commit))] + " with its history"
	}
	where := "detached HEAD"
	if top.Branch != "" {
		where = "branch " + top.Branch
	}
	s := fmt.Sprintf("%d files, %s, %s, on %s", n, formatBytes(p.Bytes()), what, where)
	if len(p.Repos) > 1 {
		s += fmt.Sprintf(", %d submodules", len(p.Repos)-1)
	}
	return s
}

// QuotePath returns name as is when it is plain printable text, else Go-
// quoted: a file name must never move a terminal's cursor.
func QuotePath(name string) string {
	for _, r := range name {
		if !unicode.IsPrint(r) || r == '"' || r == '\\' {
			return strconv.Quote(name)
		}
	}
	return name
}

func formatBytes(n int64) string {
	const unit = 1024
	if n < unit {
		return fmt.Sprintf("%d B", n)
	}
	div, exp := int64(unit), 0
	for m := n / unit; m >= unit; m /= unit {
		div *= unit
		exp++
	}
	return fmt.Sprintf("%.1f %siB", float64(n)/float64(div), strings.Split("K,M,G,T,P", ",")[exp])
}
