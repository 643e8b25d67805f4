package proto

import (
	"strings"
	"testing"
)

func TestParseDataDirs(t *testing.T) {
	got, err := ParseDataDirs([]byte("# comment\n/var/lib/docker\n\n  /var/lib/containerd # trailing\n/var/lib/docker\n"))
	if err != nil || strings.Join(got, "|") != "var/lib/docker|var/lib/containerd" {
		t.Errorf("got %q, %v", got, err)
	}
	for in, want := range map[string]string{
		"var/lib/docker":   "not a clean absolute path",
		"/var/../etc":      "not a clean absolute path",
		"/var/lib/docker/": "not a clean absolute path",
		"/":                "not a clean absolute path",
		"/proc/x":          "under /proc",
		"/root":            "under /root",
		"/run/docker":      "under /run",
		"/rootfs":          "", // only /root itself and below
	} {
		_, err := ParseDataDirs([]byte("/ok\n" + in + "\n"))
		if want == "" {
			if err != nil {
				t.Errorf("%q: %v", in, err)
			}
			continue
		}
		if err == nil || !strings.Contains(err.Error(), want) || !strings.Contains(err.Error(), "line 2") {
			t.Errorf("%q: %v, want %q on line 2", in, err, want)
		}
	}
	var many strings.Builder
	for i := 0; i <= MaxDataDirs; i++ {
		many.WriteString("/d" + strings.Repeat("x", i) + "\n")
	}
	if _, err := ParseDataDirs([]byte(many.String())); err == nil {
		t.Error("too many directories: no error")
	}
}
