package qemu

import (
	"context"
	"regexp"
	"testing"
)

func TestParseVersion(t *testing.T) {
	for in, want := range map[string]string{
		"QEMU emulator version 7.2.22 (Debian 1:7.2+dfsg-7+deb12u18+b3)\nCopyright (c) 2003-2022\n": "7.2.22",
		"QEMU emulator version 9.0.0\n": "9.0.0",
	} {
		if got, err := parseVersion(in); err != nil || got != want {
			t.Errorf("parseVersion(%q) = %q, %v; want %q", in, got, err, want)
		}
	}
	for _, bad := range []string{"", "qemu-system-x86_64: unknown option", "QEMU emulator version (x)"} {
		if got, err := parseVersion(bad); err == nil {
			t.Errorf("parseVersion(%q) = %q, want an error", bad, got)
		}
	}
}

// The version of a binary that is not there is an error, not "".
func TestVersionOfMissingBinary(t *testing.T) {
	d := New(Options{Binary: "/nonexistent/qemu-system-x86_64"})
	if v, err := d.Version(context.Background()); err == nil || v != "" {
		t.Fatalf("Version() = %q, %v", v, err)
	}
}

// The host's QEMU, where there is one, reports its release in the form
// query-version gives SavedState.VMMVersion.
func TestVersionOfHostQEMU(t *testing.T) {
	d := New(Options{})
	if d.Available() != nil {
		return // no QEMU on this host: TestVersionOfMissingBinary covers the error
	}
	v, err := d.Version(context.Background())
	if err != nil || !regexp.MustCompile(`^\d+\.\d+\.\d+$`).MatchString(v) {
		t.Fatalf("Version() = %q, %v", v, err)
	}
	if v2, _ := d.Version(context.Background()); v2 != v {
		t.Fatalf("second Version() = %q", v2)
	}
}
