package e2e

import (
	"bytes"
	"context"
	"encoding/base64"
	"io"
	"mime/multipart"
	"net"
	"net/http"
	"runtime"
	"strings"
	"testing"
	"time"

	"connectrpc.com/connect"
	"github.com/vishvananda/netns"

	fspb "github.com/banger-dev/banger/proto/filesystem"
	"github.com/banger-dev/banger/proto/filesystem/filesystempbconnect"
	ppb "github.com/banger-dev/banger/proto/process"
	"github.com/banger-dev/banger/proto/process/processpbconnect"
)

// TestEnvd drives E2B's in-sandbox API (internal/envd) through the real
// daemon's HTTP listener with connect-go clients (JSON codec, as E2B's
// SDK), against one real guest: processes (output, exit code, env, cwd,
// user, a failing command, background + input + re-attach + kill, a
// terminal with resize), the filesystem calls, a directory watch, and
// /files; then the same sandbox stopped is refused as E2B refuses it.
func TestEnvd(t *testing.T) {
	s := newSDKEnv(t, "")
	e, key := s.env, s.key
	e.must("vm", "create", "--name", "sb")
	defer e.banger("vm", "delete", "sb")

	hc := e.nsHTTPClient(map[string]string{"X-API-Key": key, "E2b-Sandbox-Id": "sb", "E2b-Sandbox-Port": "49983"})
	base := "http://" + apiAddr
	proc := processpbconnect.NewProcessClient(hc, base, connect.WithProtoJSON())
	fsc := filesystempbconnect.NewFilesystemClient(hc, base, connect.WithProtoJSON())
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()

	// commands.run: bash -l -c, as the SDK sends it.
	run := func(cmd string, user string, envs map[string]string, cwd string) (string, string, int32) {
		t.Helper()
		req := connect.NewRequest(&ppb.StartRequest{Process: &ppb.ProcessConfig{Cmd: "/bin/bash", Args: []string{"-l", "-c", cmd}, Envs: envs}})
		if cwd != "" {
			req.Msg.Process.Cwd = &cwd
		}
		if user != "" {
			req.Header().Set("Authorization", "Basic "+base64.StdEncoding.EncodeToString([]byte(user+":")))
		}
		no := false
		req.Msg.Stdin = &no
		s, err := proc.Start(ctx, req)
		if err != nil {
			t.Fatal(err)
		}
		var out, errb string
		var code int32 = -100
		for s.Receive() {
			ev := s.Msg().GetEvent()
			out += string(ev.GetData().GetStdout())
			errb += string(ev.GetData().GetStderr())
			if ev.GetEnd() != nil {
				code = ev.GetEnd().GetExitCode()
			}
		}
		if err := s.Err(); err != nil {
			t.Fatalf("run %q: %v", cmd, err)
		}
		// The golden image's login shell clears the screen when it exits
		// (Debian's bash_logout: clear_console), as it would under E2B.
		out = strings.TrimSuffix(out, "\x1b[3J\x1b[H\x1b[2J")
		return out, errb, code
	}
	start := time.Now()
	if out, errb, code := run("echo out; echo err >&2; exit 3", "", nil, ""); out != "out\n" || errb != "err\n" || code != 3 {
		t.Fatalf("run: %q %q %d", out, errb, code)
	}
	t.Logf("first command in %s", time.Since(start).Round(time.Millisecond))
	// For comparison (logged, not asserted: issue 15's benchmark is the
	// SDK's): a Start of /bin/true through envd against `vm exec`.
	// The SDK's commands.run('true') is `bash -l -c true`: timed too.
	for _, argv := range [][]string{{"/bin/true"}, {"/bin/bash", "-l", "-c", "true"}} {
		for i := 0; i < 3; i++ {
			t0 := time.Now()
			s, err := proc.Start(ctx, connect.NewRequest(&ppb.StartRequest{Process: &ppb.ProcessConfig{Cmd: argv[0], Args: argv[1:]}}))
			for err == nil && s.Receive() {
			}
			envdTook := time.Since(t0)
			t0 = time.Now()
			e.must(append([]string{"vm", "exec", "sb", "--"}, argv...)...)
			t.Logf("%v: envd Start %s, vm exec %s", argv, envdTook.Round(time.Millisecond), time.Since(t0).Round(time.Millisecond))
		}
	}
	logout, _, _ := run("cat /root/.bash_logout /etc/bash.bash_logout 2>&1", "", nil, "")
	t.Logf("bash logout files: %q", logout)
	if out, _, code := run(`echo "$GREETING from $(pwd) as $(id -un)"`, "", map[string]string{"GREETING": "hi"}, "/tmp"); out != "hi from /tmp as root\n" || code != 0 {
		t.Fatalf("env/cwd: %q %d", out, code)
	}
	if out, _, _ := run("id -un; pwd", "nobody", nil, ""); out != "nobody\n/nonexistent\n" && out != "nobody\n/\n" {
		t.Fatalf("user nobody: %q", out)
	}
	if _, errb, code := run("no-such-command", "", nil, ""); code != 127 || !strings.Contains(errb, "not found") {
		t.Fatalf("failing command: %q %d", errb, code)
	}

	// A background command: input by pid from another call, then kill.
	bg, err := proc.Start(ctx, connect.NewRequest(&ppb.StartRequest{Process: &ppb.ProcessConfig{Cmd: "/bin/bash", Args: []string{"-c", "while read l; do echo got:$l; done"}}}))
	if err != nil || !bg.Receive() {
		t.Fatalf("background start: %v %v", err, bg.Err())
	}
	sel := &ppb.ProcessSelector{Selector: &ppb.ProcessSelector_Pid{Pid: bg.Msg().GetEvent().GetStart().GetPid()}}
	if _, err := proc.SendInput(ctx, connect.NewRequest(&ppb.SendInputRequest{Process: sel, Input: &ppb.ProcessInput{Input: &ppb.ProcessInput_Stdin{Stdin: []byte("ping\n")}}})); err != nil {
		t.Fatal(err)
	}
	for bg.Receive() && !strings.Contains(string(bg.Msg().GetEvent().GetData().GetStdout()), "got:ping") {
	}
	if l, err := proc.List(ctx, connect.NewRequest(&ppb.ListRequest{})); err != nil || len(l.Msg.GetProcesses()) != 1 {
		t.Fatalf("list: %v %v", l, err)
	}
	if _, err := proc.SendSignal(ctx, connect.NewRequest(&ppb.SendSignalRequest{Process: sel, Signal: ppb.Signal_SIGNAL_SIGKILL})); err != nil {
		t.Fatal(err)
	}
	var end *ppb.ProcessEvent_EndEvent
	for bg.Receive() {
		if ev := bg.Msg().GetEvent().GetEnd(); ev != nil {
			end = ev
		}
	}
	if end.GetExitCode() != 137 {
		t.Fatalf("killed: %+v %v", end, bg.Err())
	}

	// A terminal, resized, then typed into.
	ptyReq := connect.NewRequest(&ppb.StartRequest{Process: &ppb.ProcessConfig{Cmd: "/bin/bash", Args: []string{"-i", "-l"}},
		Pty: &ppb.PTY{Size: &ppb.PTY_Size{Cols: 80, Rows: 24}}})
	pty, err := proc.Start(ctx, ptyReq)
	if err != nil || !pty.Receive() {
		t.Fatalf("pty start: %v", err)
	}
	psel := &ppb.ProcessSelector{Selector: &ppb.ProcessSelector_Pid{Pid: pty.Msg().GetEvent().GetStart().GetPid()}}
	if _, err := proc.Update(ctx, connect.NewRequest(&ppb.UpdateRequest{Process: psel, Pty: &ppb.PTY{Size: &ppb.PTY_Size{Cols: 132, Rows: 43}}})); err != nil {
		t.Fatal(err)
	}
	proc.SendInput(ctx, connect.NewRequest(&ppb.SendInputRequest{Process: psel, Input: &ppb.ProcessInput{Input: &ppb.ProcessInput_Pty{Pty: []byte("stty size; exit 5\n")}}}))
	var ptyOut string
	var ptyCode int32 = -1
	for pty.Receive() {
		ev := pty.Msg().GetEvent()
		ptyOut += string(ev.GetData().GetPty())
		if ev.GetEnd() != nil {
			ptyCode = ev.GetEnd().GetExitCode()
		}
	}
	if !strings.Contains(ptyOut, "43 132") || ptyCode != 5 {
		t.Fatalf("pty: %q %d %v", ptyOut, ptyCode, pty.Err())
	}

	// Filesystem, relative paths in root's home; a watch sees the writes.
	watch, err := fsc.WatchDir(ctx, connect.NewRequest(&fspb.WatchDirRequest{Path: "/root", Recursive: true}))
	if err != nil || !watch.Receive() || watch.Msg().GetStart() == nil {
		t.Fatalf("watch: %v", err)
	}
	if _, err := fsc.MakeDir(ctx, connect.NewRequest(&fspb.MakeDirRequest{Path: "proj/src"})); err != nil {
		t.Fatal(err)
	}
	if _, err := fsc.MakeDir(ctx, connect.NewRequest(&fspb.MakeDirRequest{Path: "proj/src"})); connect.CodeOf(err) != connect.CodeAlreadyExists {
		t.Fatalf("mkdir again: %v", err)
	}
	code, body := e.upload(hc, base+"/files?path=proj/src/a.txt", "hello from the host")
	if code != 200 || !strings.Contains(body, `"path":"/root/proj/src/a.txt"`) {
		t.Fatalf("upload: %d %s", code, body)
	}
	seen := map[string]bool{}
	for !seen["proj/src/a.txt"] && watch.Receive() {
		if ev := watch.Msg().GetFilesystem(); ev != nil {
			seen[ev.GetName()] = true
		}
	}
	watch.Close()
	if !seen["proj"] || !seen["proj/src/a.txt"] {
		t.Fatalf("watch events: %v (%v)", seen, watch.Err())
	}
	if out, _, _ := run("cat /root/proj/src/a.txt", "", nil, ""); out != "hello from the host" {
		t.Fatalf("uploaded file in the guest: %q", out)
	}
	if _, err := fsc.Move(ctx, connect.NewRequest(&fspb.MoveRequest{Source: "proj/src/a.txt", Destination: "proj/b.txt"})); err != nil {
		t.Fatal(err)
	}
	ls, err := fsc.ListDir(ctx, connect.NewRequest(&fspb.ListDirRequest{Path: "proj", Depth: 2}))
	if err != nil || len(ls.Msg.GetEntries()) != 2 {
		t.Fatalf("list: %v %v", ls, err)
	}
	resp, err := hc.Get(base + "/files?path=proj/b.txt")
	if err != nil {
		t.Fatal(err)
	}
	got, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != 200 || string(got) != "hello from the host" {
		t.Fatalf("download: %d %q", resp.StatusCode, got)
	}
	if _, err := fsc.Remove(ctx, connect.NewRequest(&fspb.RemoveRequest{Path: "proj"})); err != nil {
		t.Fatal(err)
	}
	if _, err := fsc.Stat(ctx, connect.NewRequest(&fspb.StatRequest{Path: "proj"})); connect.CodeOf(err) != connect.CodeNotFound {
		t.Fatalf("stat removed: %v", err)
	}

	// A stopped sandbox: 502, as E2B's proxy answers.
	e.must("vm", "stop", "sb")
	resp, err = hc.Get(base + "/health")
	if err != nil {
		t.Fatal(err)
	}
	got, _ = io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != 502 || !strings.Contains(string(got), "is not running") {
		t.Fatalf("stopped sandbox: %d %s", resp.StatusCode, got)
	}
}

// upload posts one file as multipart/form-data, as the SDK's files.write.
func (e *env) upload(hc *http.Client, url, content string) (int, string) {
	e.t.Helper()
	var buf bytes.Buffer
	mw := multipart.NewWriter(&buf)
	w, _ := mw.CreateFormFile("file", "a.txt")
	w.Write([]byte(content))
	mw.Close()
	resp, err := hc.Post(url, mw.FormDataContentType(), &buf)
	if err != nil {
		e.t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b)
}

// nsHTTPClient is an HTTP client whose connections are made inside the
// test's network namespace (where the daemon listens), sending header
// on every request.
func (e *env) nsHTTPClient(header map[string]string) *http.Client {
	e.t.Helper()
	ns, err := netns.GetFromName(e.ns)
	if err != nil {
		e.t.Fatal(err)
	}
	e.t.Cleanup(func() { ns.Close() })
	dial := func(ctx context.Context, network, addr string) (net.Conn, error) {
		// A socket belongs to the namespace of the thread that made it.
		runtime.LockOSThread()
		defer runtime.UnlockOSThread()
		orig, err := netns.Get()
		if err != nil {
			return nil, err
		}
		defer orig.Close()
		if err := netns.Set(ns); err != nil {
			return nil, err
		}
		defer netns.Set(orig)
		return (&net.Dialer{}).DialContext(ctx, network, addr)
	}
	return &http.Client{Transport: headerTransport{header, &http.Transport{DialContext: dial}}}
}

type headerTransport struct {
	header map[string]string
	next   http.RoundTripper
}

func (h headerTransport) RoundTrip(r *http.Request) (*http.Response, error) {
	r = r.Clone(r.Context())
	for k, v := range h.header {
		if r.Header.Get(k) == "" {
			r.Header.Set(k, v)
		}
	}
	return h.next.RoundTrip(r)
}

// TestEnvdSDK runs e2e/e2bsdk/envd.mjs: the unmodified e2b SDK creates a
// sandbox and uses commands (output, exit code, env, cwd, user, a
// failing command, a background command with sendStdin and kill), files
// (write one and many, read, list, makeDir, rename, remove, exists),
// watchDir and a pty with input and resize. One guest.
func TestEnvdSDK(t *testing.T) {
	s := newSDKEnv(t, "")
	var got struct {
		FirstRunMS, TrueMS float64
		Run                struct {
			Stdout, Stderr string
			ExitCode       int
		}
		Env, Cwd, User string
		SandboxEnv     string
		Failing        struct {
			CommandExitError bool
			ExitCode         int
			Stderr           string
		}
		Listed, Killed bool
		Background     struct {
			Stdout   string
			ExitCode int
		}
		MakeDir, MakeDirAgain     bool
		Written, Read, Renamed    string
		List, Events              []string
		ExistsBefore, ExistsAfter bool
		Pty                       struct {
			Output   string
			ExitCode int
		}
	}
	s.node(&got, "envd.mjs")
	t.Logf("SDK: first commands.run %.0f ms, commands.run('true') %.0f ms", got.FirstRunMS, got.TrueMS)
	// The golden image's login shell clears the screen at exit (bash_logout).
	clean := func(s string) string { return strings.TrimSuffix(s, "\x1b[3J\x1b[H\x1b[2J") }
	if clean(got.Run.Stdout) != "out\n" || got.Run.Stderr != "err\n" || got.Run.ExitCode != 0 {
		t.Errorf("commands.run: %+v", got.Run)
	}
	if clean(got.Env) != "hello\n" || clean(got.Cwd) != "/tmp\n" || clean(got.User) != "nobody\n" {
		t.Errorf("env %q, cwd %q, user %q", got.Env, got.Cwd, got.User)
	}
	if clean(got.SandboxEnv) != "from-create\n" {
		t.Errorf("Sandbox.create's envs in a command: %q", got.SandboxEnv)
	}
	if !got.Failing.CommandExitError || got.Failing.ExitCode != 3 || got.Failing.Stderr != "failing\n" {
		t.Errorf("failing command: %+v", got.Failing)
	}
	if !got.Listed || !got.Killed || !strings.Contains(got.Background.Stdout, "got:ping") || got.Background.ExitCode != 137 {
		t.Errorf("background: listed %v killed %v %+v", got.Listed, got.Killed, got.Background)
	}
	if !got.MakeDir || got.MakeDirAgain || got.Written != "/tmp/w/dir/a.txt" || got.Read != "file content" ||
		got.Renamed != "/tmp/w/dir/b2.txt" || !got.ExistsBefore || got.ExistsAfter {
		t.Errorf("files: %+v", got)
	}
	if strings.Join(got.List, ",") != "dir:dir,file:b.txt,file:c.txt" {
		t.Errorf("files.list: %v", got.List)
	}
	events := strings.Join(got.Events, ",")
	// An upload appears as its file's creation (renamed into place).
	for _, want := range []string{"create:dir", "create:dir/a.txt", "create:b.txt", "rename:b.txt", "create:dir/b2.txt", "remove:c.txt"} {
		if !strings.Contains(","+events+",", ","+want+",") {
			t.Errorf("watchDir: no %s in %s", want, events)
		}
	}
	if strings.Contains(events, ".banger-") {
		t.Errorf("watchDir shows banger's staging directories: %s", events)
	}
	if !strings.Contains(got.Pty.Output, "30 100") || got.Pty.ExitCode != 4 {
		t.Errorf("pty: %+v", got.Pty)
	}
}
