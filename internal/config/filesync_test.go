package config

import (
	"strings"
	"testing"
)

func TestFileSyncLoads(t *testing.T) {
	c, err := Load(writeConfig(t, `
[[file_sync]]
host = "~/.config/gh/hosts.yml"
guest = "~/.config/gh/hosts.yml"

[[file_sync]]
host = "/etc/ssl/extra"
guest = "/root/certs"
mode = "0750"

[[file_sync]]
host = "~/.netrc"
guest = "~/.netrc"
mode = 0o640
`))
	if err != nil {
		t.Fatal(err)
	}
	fs := c.FileSyncEntries()
	if len(fs) != 3 {
		t.Fatalf("entries %+v", fs)
	}
	if fs[0].HostPath("/home/u") != "/home/u/.config/gh/hosts.yml" || fs[0].GuestPath() != "/root/.config/gh/hosts.yml" || fs[0].Mode.Set {
		t.Errorf("entry 1: %+v", fs[0])
	}
	if fs[1].HostPath("/home/u") != "/etc/ssl/extra" || fs[1].GuestPath() != "/root/certs" || fs[1].Mode.Perm != 0o750 {
		t.Errorf("entry 2: %+v", fs[1])
	}
	if fs[2].Mode.Perm != 0o640 {
		t.Errorf("entry 3 mode %o", fs[2].Mode.Perm)
	}
}

func TestFileSyncValidationNamesTheEntry(t *testing.T) {
	for _, tc := range []struct{ entry, want string }{
		{`host = ""` + "\nguest = \"~/x\"", "host and guest are both required"},
		{`host = "~/x"`, "host and guest are both required"},
		{`host = "rel/x"` + "\nguest = \"~/x\"", `host path "rel/x" is relative`},
		{`host = "~/a/../../etc/shadow"` + "\nguest = \"~/x\"", "must not contain .."},
		{`host = "~bob/x"` + "\nguest = \"~/x\"", "not ~user"},
		{`host = "~/x"` + "\nguest = \"~/a/../../etc/x\"", "must not contain .."},
		{`host = "~/x"` + "\nguest = \"/etc/x\"", "must be under ~/ or /root/"},
		{`host = "~/x"` + "\nguest = \"/rootkit/x\"", "must be under ~/ or /root/"},
		{`host = "~/x"` + "\nguest = \"~/\"", "names a whole home"},
		{`host = "~/x"` + "\nguest = \"x\"", "is relative"},
		{`host = "~/x"` + "\nguest = \"~/x\"\nmode = \"rwx\"", `mode "rwx"`},
		{`host = "~/x"` + "\nguest = \"~/x\"\nmode = \"1777\"", `mode "1777"`},
		{`host = "~/x"` + "\nguest = \"~/x\"\nmode = 600", `mode "0o1130"`},
		{`host = "~/x"` + "\nguest = \"~/x\"\nmode = true", "not a mode"},
	} {
		body := "[[file_sync]]\nhost = \"~/ok\"\nguest = \"~/ok\"\n\n[[file_sync]]\n" + tc.entry + "\n"
		_, err := Load(writeConfig(t, body))
		if err == nil || !strings.Contains(err.Error(), "file_sync entry 2") || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%s:\n  err = %v\n  want entry 2 and %q", tc.entry, err, tc.want)
		}
	}
}
