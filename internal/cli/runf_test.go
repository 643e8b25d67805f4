package cli

import (
	"bytes"
	"context"
	"errors"
	"io"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"reflect"
	"strings"
	"testing"

	"github.com/banger-dev/banger/internal/api"
	"github.com/banger-dev/banger/internal/client"
	"github.com/spf13/cobra"
)

// parseOnly builds a command with a runF that captures its options, runs
// it on args and returns what runF got (nil when it was not called). The
// client refuses to dial: flag parsing must never reach the daemon.
func parseOnly[O any](t *testing.T, build func(*factory, func(*O) error) *cobra.Command, args ...string) (*O, error) {
	t.Helper()
	f := newFactory(&Env{In: strings.NewReader(""), Out: io.Discard, Err: io.Discard, Client: &client.Client{
		DialForTest: func(context.Context) (net.Conn, error) {
			t.Error("flag parsing dialed the daemon")
			return nil, errors.New("must not dial")
		}}})
	var got *O
	cmd := build(f, func(o *O) error { got = o; return nil })
	cmd.SetArgs(args)
	cmd.SetOut(io.Discard)
	cmd.SetErr(io.Discard)
	return got, cmd.Execute()
}

// wantUsage checks that err is a usage error and runF was not reached.
func wantUsage[O any](t *testing.T, args []string, got *O, err error) {
	t.Helper()
	var ue usageError
	if !errors.As(err, &ue) {
		t.Errorf("%q: err %v, want a usage error", args, err)
	}
	if got != nil {
		t.Errorf("%q: runF ran with %+v after a usage error", args, *got)
	}
}

func TestVMCreateFlagsReachRunF(t *testing.T) {
	args := []string{"--name", "dev", "--vcpu", "2", "--memory", "1.5G", "--disk-size", "20G", "--vmm", "qemu", "--image", "alpine", "--json", "--no-wait", "--cold"}
	got, err := parseOnly(t, newVMCreateCmd, args...)
	if err != nil || got == nil {
		t.Fatalf("err %v, opts %v", err, got)
	}
	want := api.CreateParams{Name: "dev", Image: "alpine", VCPU: 2, MemoryMiB: 1536, DiskSize: "20G", VMM: "qemu", WaitSSH: true, NoWait: true, Cold: true}
	if got.Params != want || !got.JSON {
		t.Errorf("params %+v json %v, want %+v json true", got.Params, got.JSON, want)
	}
	for _, bad := range [][]string{{"--vcpu", "0"}, {"--name", "Bad_Name"}, {"--vmm", "kvm"}, {"--memory", "1M"}, {"extra"}} {
		got, err := parseOnly(t, newVMCreateCmd, bad...)
		wantUsage(t, bad, got, err)
	}
}

// fakeVMs answers the client calls of vm create and vm run from memory.
type fakeVMs struct {
	create    api.CreateParams
	createErr error
	runCalled bool
}

func (c *fakeVMs) VMCreate(_ context.Context, p api.CreateParams, show func(api.Progress)) (api.VM, error) {
	c.create = p
	show(api.Progress{Stage: "boot", Message: "booting"})
	return api.VM{Name: p.Name, IP: "172.16.0.9"}, c.createErr
}

func (c *fakeVMs) VMRunWorkspace(ctx context.Context, p api.RunParams, _ io.Reader, show func(api.Progress)) (*client.Stream, api.VM, error) {
	return c.VMRun(ctx, p, show)
}

func (c *fakeVMs) VMRun(context.Context, api.RunParams, func(api.Progress)) (*client.Stream, api.VM, error) {
	c.runCalled = true
	return nil, api.VM{}, errors.New("no capacity left")
}

func TestVMCreateRunWithAFakeClient(t *testing.T) {
	for _, tt := range []struct {
		noWait bool
		want   string
	}{
		{false, "dev running at 172.16.0.9 (banger vm ssh dev)\n"},
		{true, "dev reserved at 172.16.0.9; booting in the background (banger vm show dev)\n"},
	} {
		var out, errb bytes.Buffer
		fake := &fakeVMs{}
		opts := &vmCreateOptions{IO: &iostreams{Out: &out, Err: &errb}, Client: fake,
			Params: api.CreateParams{Name: "dev", WaitSSH: true, NoWait: tt.noWait}}
		if err := vmCreateRun(context.Background(), opts); err != nil {
			t.Fatal(err)
		}
		if out.String() != tt.want || fake.create != opts.Params {
			t.Errorf("out %q, client got %+v", out.String(), fake.create)
		}
		if !strings.Contains(errb.String(), "boot: booting") {
			t.Errorf("progress not on stderr: %q", errb.String())
		}
	}
	fake := &fakeVMs{createErr: errors.New("no room")}
	var out bytes.Buffer
	err := vmCreateRun(context.Background(), &vmCreateOptions{IO: &iostreams{Out: &out, Err: io.Discard}, Client: fake})
	if err == nil || err.Error() != "no room" || out.Len() != 0 {
		t.Errorf("err %v, out %q", err, out.String())
	}
}

// gitRepo is a directory with one commit.
func gitRepo(t *testing.T) string {
	t.Helper()
	dir := filepath.Join(t.TempDir(), "repo")
	os.MkdirAll(dir, 0o755)
	os.WriteFile(filepath.Join(dir, "Makefile"), []byte("test:\n\ttrue\n"), 0o644)
	for _, args := range [][]string{{"init", "-q", "-b", "main"}, {"add", "-A"},
		{"-c", "user.name=t", "-c", "user.email=t@example.com", "commit", "-q", "-m", "one"}} {
		if out, err := exec.Command("git", append([]string{"-C", dir}, args...)...).CombinedOutput(); err != nil {
			t.Fatalf("git %v: %v\n%s", args, err, out)
		}
	}
	return dir
}

func TestVMRunFlagsReachRunF(t *testing.T) {
	t.Setenv("TERM", "xterm-test")
	t.Setenv("FROM_HOST", "h")
	got, err := parseOnly(t, newVMRunCmd, "--rm", "--cold", "--vcpu", "2", "-e", "A=1", "-e", "FROM_HOST", "-w", "/srv", "-u", "node", "-t", "--", "make", "test")
	if err != nil || got == nil {
		t.Fatalf("err %v, opts %v", err, got)
	}
	p := got.Params
	if !p.Remove || !p.Create.Cold || p.Create.VCPU != 2 || p.Dir != "/srv" || p.User != "node" ||
		!reflect.DeepEqual(p.Argv, []string{"make", "test"}) || got.Repo != "" || p.Workspace != nil {
		t.Errorf("params %+v repo %q", p, got.Repo)
	}
	if p.TTY == nil || *p.TTY != (api.WinSize{Rows: 24, Cols: 80}) || !reflect.DeepEqual(p.Env, []string{"TERM=xterm-test", "A=1", "FROM_HOST=h"}) {
		t.Errorf("tty %+v env %q", p.TTY, p.Env)
	}

	repo := gitRepo(t)
	got, err = parseOnly(t, newVMRunCmd, "--rm", repo, "--include-untracked", "--branch", "fix", "--guest-path", "~/src", "--", "make")
	if err != nil || got == nil {
		t.Fatalf("with a repository: err %v, opts %v", err, got)
	}
	w := got.Workspace
	if got.Repo != repo || !w.untracked || w.branch != "fix" || w.guestPath != "~/src" || !reflect.DeepEqual(got.Params.Argv, []string{"make"}) {
		t.Errorf("repo %q workspace %+v argv %q", got.Repo, w, got.Params.Argv)
	}

	for _, bad := range [][]string{{"--include-untracked", "--", "x"}, {"-e", "=x", "--", "y"}, {"./no-such-repo", "--", "y"}, {"--vcpu", "0", "--", "y"}} {
		got, err := parseOnly(t, newVMRunCmd, bad...)
		wantUsage(t, bad, got, err)
	}
}

func TestVMRunRunWithAFakeClient(t *testing.T) {
	// The daemon refusing the run: its message on stderr, exit 125.
	var errb bytes.Buffer
	fake := &fakeVMs{}
	err := vmRunRun(context.Background(), &vmRunOptions{IO: &iostreams{In: strings.NewReader(""), Out: io.Discard, Err: &errb},
		Client: fake, Params: api.RunParams{ExecRequest: api.ExecRequest{Argv: []string{"true"}}}})
	var ee exitError
	if !errors.As(err, &ee) || ee.code != ExitRunFailed || errb.String() != "banger: no capacity left\n" {
		t.Errorf("err %v, stderr %q", err, errb.String())
	}
	// A dry run plans the import on the host and never calls the daemon.
	var out bytes.Buffer
	errb.Reset()
	fake = &fakeVMs{}
	opts := &vmRunOptions{IO: &iostreams{Out: &out, Err: &errb}, Client: fake, Repo: gitRepo(t)}
	opts.Workspace.dryRun = true
	if err := vmRunRun(context.Background(), opts); err != nil {
		t.Fatal(err)
	}
	if fake.runCalled || out.String() != "100644 commit    Makefile\n" || !strings.Contains(errb.String(), "dry run: 1 file") {
		t.Errorf("called %v, out %q, stderr %q", fake.runCalled, out.String(), errb.String())
	}
}

// fakePull answers image pulls from memory.
type fakePull struct {
	got api.PullImageParams
	err error
}

func (c *fakePull) ImagePull(_ context.Context, p api.PullImageParams, show func(api.Progress)) (api.ImageInfo, error) {
	c.got = p
	show(api.Progress{Stage: "pull", Message: "layer 1/1", Unit: "bytes", Done: 5, Total: 10})
	return api.ImageInfo{Image: api.Image{Name: p.Name, SizeBytes: 3 << 20, Source: "oci:" + p.Ref}, Notes: []string{"skipped /dev/null"}}, c.err
}

func TestImagePullFlagsReachRunF(t *testing.T) {
	got, err := parseOnly(t, newImagePullCmd, "docker.io/library/alpine:3.20", "--name", "alpine")
	if err != nil || got == nil || got.Params != (api.PullImageParams{Ref: "docker.io/library/alpine:3.20", Name: "alpine"}) {
		t.Fatalf("err %v, opts %+v", err, got)
	}
	for _, bad := range [][]string{{}, {"a", "b"}} {
		got, err := parseOnly(t, newImagePullCmd, bad...)
		wantUsage(t, bad, got, err)
	}
}

func TestImagePullRunWithAFakeClient(t *testing.T) {
	var out, errb bytes.Buffer
	fake := &fakePull{}
	opts := &imagePullOptions{IO: &iostreams{Out: &out, Err: &errb}, Client: fake, Params: api.PullImageParams{Ref: "alpine:3.20", Name: "alpine"}}
	if err := imagePullRun(context.Background(), opts); err != nil {
		t.Fatal(err)
	}
	if fake.got != opts.Params || out.String() != "image alpine ready (3 MiB, oci:alpine:3.20)\n" ||
		!strings.Contains(errb.String(), "pull: layer 1/1") || !strings.Contains(errb.String(), "note: skipped /dev/null") {
		t.Errorf("client got %+v; out %q; stderr %q", fake.got, out.String(), errb.String())
	}
	fake = &fakePull{err: errors.New("not found")}
	opts = &imagePullOptions{IO: &iostreams{Out: io.Discard, Err: io.Discard}, Client: fake, Params: api.PullImageParams{Ref: "Alpine:3.20"}}
	if err := imagePullRun(context.Background(), opts); err == nil || err.Error() != "not found (image names are lowercase: try alpine:3.20)" {
		t.Errorf("err %v", err)
	}
}

func TestWorkspaceExportFlagsReachRunF(t *testing.T) {
	got, err := parseOnly(t, newWorkspaceExportCmd, "dev", "--base", "HEAD~3", "--name-only", "-o", "last3.patch", "--guest-path", "~/src/app")
	want := api.WorkspaceExportParams{Name: "dev", Base: "HEAD~3", NameOnly: true, GuestPath: "~/src/app"}
	if err != nil || got == nil || got.Params != want || got.Output != "last3.patch" {
		t.Fatalf("err %v, opts %+v", err, got)
	}
	for _, bad := range [][]string{{}, {"dev", "extra"}, {"dev", "--guest-path", "../etc"}, {"dev", "--guest-path", "/etc"}} {
		got, err := parseOnly(t, newWorkspaceExportCmd, bad...)
		wantUsage(t, bad, got, err)
	}
}
