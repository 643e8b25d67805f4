package vms

import (
	"strings"
	"testing"
	"unicode/utf8"
)

// A long command is shortened for `daemon stop`'s list without cutting a
// character in half.
func TestDescribeExecShortensByCharacters(t *testing.T) {
	got := describeExec("vm.exec", "dev", []string{"cat", strings.Repeat("é", 40)}, 42)
	if !utf8.ValidString(got) || !strings.Contains(got, "...") || !strings.HasPrefix(got, "vm exec dev -- cat é") || !strings.HasSuffix(got, " (client pid 42)") {
		t.Fatalf("describeExec = %q", got)
	}
	if got := describeExec("vm.run", "dev", []string{"true"}, 0); got != "vm run dev -- true" {
		t.Fatalf("describeExec = %q", got)
	}
}
