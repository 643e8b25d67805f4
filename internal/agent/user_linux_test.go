package agent

import (
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"

	"github.com/banger-dev/banger/internal/agent/proto"
)

func TestLookupAccount(t *testing.T) {
	root := t.TempDir()
	os.MkdirAll(filepath.Join(root, "etc"), 0o755)
	os.WriteFile(filepath.Join(root, "etc/passwd"), []byte(`root:x:0:0:root:/root:/bin/sh
# a comment
node:x:1000:1000::/home/node:/bin/sh
app:x:1001:1001::/srv/app:/bin/sh
`), 0o644)
	os.WriteFile(filepath.Join(root, "etc/group"), []byte(`root:x:0:
node:x:1000:
app:x:1001:
docker:x:998:node,app
staff:x:50:node
`), 0o644)
	for _, tt := range []struct {
		spec string
		want account
		err  string
	}{
		{"node", account{name: "node", uid: 1000, gid: 1000, groups: []uint32{1000, 998, 50}, home: "/home/node"}, ""},
		{"1001", account{name: "app", uid: 1001, gid: 1001, groups: []uint32{1001, 998}, home: "/srv/app"}, ""},
		{"node:staff", account{name: "node", uid: 1000, gid: 50, groups: []uint32{50}, home: "/home/node"}, ""},
		{"app:7", account{name: "app", uid: 1001, gid: 7, groups: []uint32{7}, home: "/srv/app"}, ""},
		{"4242", account{uid: 4242, gid: 0, groups: []uint32{0}, home: "/"}, ""},
		{"4242:4242", account{uid: 4242, gid: 4242, groups: []uint32{4242}, home: "/"}, ""},
		{"ghost", account{}, `user "ghost": no such user`},
		{"node:nogroup", account{}, `group "nogroup": no such group`},
		{":1", account{}, "want name or uid"},
		{"node:", account{}, "want name or uid"},
	} {
		got, err := lookupAccount(root, tt.spec)
		if tt.err != "" {
			if err == nil || !strings.Contains(err.Error(), tt.err) {
				t.Errorf("%q: err %v, want %q", tt.spec, err, tt.err)
			}
			continue
		}
		if err != nil || !reflect.DeepEqual(got, tt.want) {
			t.Errorf("%q = %+v, %v; want %+v", tt.spec, got, err, tt.want)
		}
	}
}

// An exec with User runs with that user's ids, HOME and home directory
// (here the host's nobody, whose home does not exist: / then).
func TestExecAsUser(t *testing.T) {
	if os.Getuid() != 0 {
		t.Fatal("this test runs as root (setuid to nobody), as the agent does")
	}
	c := connectAgent(t, &Server{}, nil)
	var out, errb strings.Builder
	st, err := c.Exec(testCtx(t), proto.ExecRequest{User: "nobody", Argv: []string{"sh", "-c", `id -u; id -g; echo "$HOME $USER"; pwd`}}, nil, &out, &errb)
	if err != nil || st.Code != 0 {
		t.Fatalf("exec: %v %+v %s", err, st, errb.String())
	}
	a, err := lookupAccount("/", "nobody")
	if err != nil {
		t.Fatal(err)
	}
	want := "65534\n65534\n" + a.home + " nobody\n" + homeOr(a.home) + "\n"
	if out.String() != want {
		t.Fatalf("stdout %q, want %q", out.String(), want)
	}
	// With a terminal, the user owns it and can reopen it by name.
	out.Reset()
	st, err = c.Exec(testCtx(t), proto.ExecRequest{User: "nobody", TTY: &proto.WinSize{Rows: 24, Cols: 80},
		Argv: []string{"sh", "-c", `stat -c %u "$(tty)"; echo reopened > "$(tty)"`}}, nil, &out, &errb)
	if err != nil || st.Code != 0 || out.String() != "65534\r\nreopened\r\n" {
		t.Fatalf("tty as nobody: %q %+v %v", out.String(), st, err)
	}
	if _, err := c.Exec(testCtx(t), proto.ExecRequest{User: "no-such-user-here", Argv: []string{"true"}}, nil, &out, &errb); err == nil || !strings.Contains(err.Error(), "no such user") {
		t.Fatalf("unknown user: %v", err)
	}
}
