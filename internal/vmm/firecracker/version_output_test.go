package firecracker

import (
	"context"
	"testing"
)

func TestParseVersionOutput(t *testing.T) {
	for in, want := range map[string]string{
		"Firecracker v1.16.1\n\nSupported snapshot versions: v8.0.0\n": "1.16.1",
		"Firecracker v1.17.0-dev\n":                                    "1.17.0-dev",
	} {
		if v, err := parseVersionOutput(in); err != nil || v.String() != want {
			t.Errorf("parseVersionOutput(%q) = %v, %v; want %s", in, v, err, want)
		}
	}
	for _, bad := range []string{"", "error: unknown flag", "Firecracker"} {
		if _, err := parseVersionOutput(bad); err == nil {
			t.Errorf("parseVersionOutput(%q) accepted", bad)
		}
	}
}

func TestVersionOfMissingBinary(t *testing.T) {
	d := New(Options{Binary: "/nonexistent/firecracker"})
	if v, err := d.Version(context.Background()); err == nil || v != "" {
		t.Fatalf("Version() = %q, %v", v, err)
	}
}
