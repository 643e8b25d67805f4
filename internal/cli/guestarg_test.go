package cli

import "testing"

func TestGuestArg(t *testing.T) {
	for in, want := range map[string]struct {
		name, path string
		ok         bool
	}{
		"dev:/srv/x":    {"dev", "/srv/x", true},
		"dev:project":   {"dev", "/root/project", true},
		"dev:":          {"dev", "/root", true},
		"dev:out/":      {"dev", "/root/out/", true},
		"dev:out/.":     {"dev", "/root/out/", true}, // must be a directory, as on the host
		"dev:/srv/x/.":  {"dev", "/srv/x/.", true},   // absolute: passed on as typed
		"./a:b":         {"", "", false},
		"/tmp/a:b":      {"", "", false},
		"plain":         {"", "", false},
		":/no/name":     {"", "", false},
		"-":             {"", "", false},
		"dev:a/../../x": {"dev", "/x", true},
	} {
		name, p, ok := guestArg(in)
		if name != want.name || p != want.path || ok != want.ok {
			t.Errorf("guestArg(%q) = %q, %q, %v; want %q, %q, %v", in, name, p, ok, want.name, want.path, want.ok)
		}
	}
}
