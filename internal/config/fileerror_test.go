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
		// A syntax error is not blamed on the key parsed before it.
		{"[vm_defaults]\nvcpu = 2\n[bo gus]\n", 3, "line 3: expected '.' or ']'"},
		// The key is named once: not "vm_defaults.memory: memory: bad size".
		{"[vm_defaults]\nmemory = \"lots\"", 2, `line 2: vm_defaults.memory: bad size "lots"`},
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

// Of several wrongly typed keys the first in the file is named, every
// time (toml.Decode alone names any of them: it walks a table in map
// order; FuzzParse found it).
func TestLoadNamesTheFirstBadKeyEveryTime(t *testing.T) {
	p := writeConfig(t, "boot_timeout = \"5s\"\nvmm = 1\nqemu_accel = 2\n[network]\ndns_port = \"53\"\nbridge = 7\n[vm_defaults]\nvcpu = \"two\"\n")
	for range 30 {
		_, err := Load(p)
		var fe *FileError
		if !errors.As(err, &fe) || fe.Line != 2 || !strings.Contains(err.Error(), "vmm: incompatible types") {
			t.Fatalf("got %v, want the error of vmm on line 2", err)
		}
	}
	p = writeConfig(t, "[network]\nbridge = \"b0\"\ndns_port = \"53\"\nsubnet = 5\n")
	for range 30 {
		if _, err := Load(p); err == nil || !strings.Contains(err.Error(), "line 3: network.dns_port: incompatible types") {
			t.Fatalf("got %v, want the error of network.dns_port on line 3", err)
		}
	}
}

func TestLoadRefusesAValueForATable(t *testing.T) {
	for _, body := range []string{"vmm = \"qemu\"\nnetwork = 5", "vmm = \"qemu\"\nnetwork = \"x\"", "vmm = \"qemu\"\n[[network]]\nbridge = \"b\""} {
		_, err := Load(writeConfig(t, body))
		if err == nil || !strings.Contains(err.Error(), "line 2: network: want a table") {
			t.Errorf("%q: %v, want a refusal of network on line 2", body, err)
		}
	}
}
