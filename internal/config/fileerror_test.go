package config

import (
	"errors"
	"fmt"
	"strings"
	"testing"
)

// A file banger cannot use is one *FileError saying where: the file, the
// line of the offending key when there is one, and what is wrong.
func TestLoadErrorNamesTheLine(t *testing.T) {
	for _, c := range []struct {
		body string
		line int
		want string
	}{
		{"# mine\n\nvmm = ", 3, "expected value"},
		{"vmm = \"qemu\"\n[network]\nbrdige = \"br0\"", 3, `unknown key "network.brdige"`},
		{"vmm = \"qemu\"\n\n[network]\n  subnet = \"lan\" # home", 4, "/16 and /29"},
		{"boot_timeout = \"5s\"\nvmm = 3", 2, "vmm"},
		{"[vm_defaults]\nvcpu = 2\ndisk_size = \"big\"", 3, "vm_defaults.disk_size"},
		{"vmm = \"xen\"", 1, "auto, qemu or firecracker"},
		{"[[file_sync]]\nhost = \"~/a\"\nguest = \"/etc/a\"", 1, "file_sync entry 1"},
		{"stats_poll_interval = \"1ms\"", 1, "at least 1s"},
	} {
		p := writeConfig(t, c.body)
		_, err := Load(p)
		var fe *FileError
		if !errors.As(err, &fe) || fe.Path != p || fe.Line != c.line || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%q: %v (line %d), want line %d and %q", c.body, err, fe.lineOr(), c.line, c.want)
			continue
		}
		if want := fmt.Sprintf("config %s, line %d: ", p, c.line); !strings.HasPrefix(err.Error(), want) {
			t.Errorf("%q: %q does not start with %q", c.body, err, want)
		}
	}
}

func (e *FileError) lineOr() int {
	if e == nil {
		return -1
	}
	return e.Line
}
