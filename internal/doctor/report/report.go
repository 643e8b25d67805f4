// Package report is the shape of a `banger doctor` report: what `bangerd
// doctor --json` prints and the CLI renders. It links nothing else, so
// the CLI can read a report without linking the checks.
package report

import (
	"fmt"
	"io"
)

// Check is one doctor finding.
type Check struct {
	Status string `json:"status"` // pass | warn | fail
	Name   string `json:"name"`
	Detail string `json:"detail"`
	Fix    string `json:"fix,omitempty"`
}

// Failed says whether any check failed (doctor then exits 1).
func Failed(checks []Check) bool {
	for _, c := range checks {
		if c.Status == "fail" {
			return true
		}
	}
	return false
}

// Render writes the human report: one line per check, and its fix below.
func Render(w io.Writer, checks []Check) {
	for _, c := range checks {
		fmt.Fprintf(w, "%-4s  %-12s %s\n", map[string]string{"pass": "ok", "warn": "WARN", "fail": "FAIL"}[c.Status], c.Name, c.Detail)
		if c.Fix != "" {
			fmt.Fprintf(w, "      %-12s fix: %s\n", "", c.Fix)
		}
	}
}
