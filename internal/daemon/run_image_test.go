package daemon

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"

	v1 "github.com/google/go-containerregistry/pkg/v1"

	"github.com/banger-dev/banger/internal/agent/proto"
	"github.com/banger-dev/banger/internal/api"
	"github.com/banger-dev/banger/internal/workspace"
)

// TestRunUsesImageRuntime: vm run applies a pulled image's config. With
// no command its Entrypoint+Cmd runs; its Env comes before the request's,
// which wins on the same name; its WorkingDir is where commands start
// unless the request names a directory or a workspace is imported.
func TestRunUsesImageRuntime(t *testing.T) {
	root := guestRoot(t)
	h := newHarness(t)
	reg, push := ociRegistry(t)
	wd := t.TempDir() // the fake VMM's commands run on the host
	rt := api.ImageRuntime{Env: []string{"FOO=from-image", "BAR=image-bar"}, WorkingDir: wd,
		Entrypoint: []string{"sh", "-c"}, Cmd: []string{`echo "$FOO $BAR $(pwd)"`}}
	push("app:1", map[string]string{"etc/os-release": "ID=app\n"},
		v1.Config{Env: rt.Env, WorkingDir: rt.WorkingDir, Entrypoint: rt.Entrypoint, Cmd: rt.Cmd})
	var info api.ImageInfo
	must(t, h.call(api.MethodImagePull, api.PullImageParams{Ref: reg + "/app:1", Name: "app"}, &info))
	if !reflect.DeepEqual(info.Runtime, rt) {
		t.Fatalf("pulled runtime %+v, want %+v", info.Runtime, rt)
	}
	if notes := strings.Join(info.Notes, "\n"); !strings.Contains(notes, `default command: ["sh" "-c"`) {
		t.Errorf("pull notes lack the default command:\n%s", notes)
	}
	must(t, h.call(api.MethodImageShow, api.NameParams{Name: "app"}, &info))
	if !reflect.DeepEqual(info.Runtime, rt) {
		t.Errorf("image show runtime %+v", info.Runtime)
	}

	spec, arch := archiveOf(t, gitRepo(t), workspace.Options{}, "")
	for _, tc := range []struct {
		name string
		p    api.RunParams
		want string
	}{
		{"no command runs the image's", api.RunParams{}, "from-image image-bar " + wd + "\n"},
		{"a command gets the image's env and dir", api.RunParams{ExecRequest: api.ExecRequest{Argv: []string{"sh", "-c", `echo "$FOO $BAR"; pwd`}}},
			"from-image image-bar\n" + wd + "\n"},
		{"the request's env wins", api.RunParams{ExecRequest: api.ExecRequest{Argv: []string{"sh", "-c", `echo "$FOO $BAR"`}, Env: []string{"BAR=mine", "NEW=x"}}},
			"from-image mine\n"},
		{"the request's dir wins", api.RunParams{ExecRequest: api.ExecRequest{Argv: []string{"pwd"}, Dir: "/"}}, "/\n"},
		{"a workspace run starts in the repository", api.RunParams{ExecRequest: api.ExecRequest{Argv: []string{"pwd"}}, Workspace: &spec},
			filepath.Join(root, "root/repo") + "\n"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			tc.p.Create, tc.p.Remove = api.CreateParams{Image: "app"}, true
			run := h.run
			if tc.p.Workspace != nil {
				run = func(p api.RunParams) (string, proto.ExitStatus, error) {
					out, st, _, err := h.runWorkspace(p, bytes.NewReader(arch))
					return out, st, err
				}
			}
			out, st, err := run(tc.p)
			if err != nil || st.Code != 0 || st.Error != "" {
				t.Fatalf("run: %+v %v (out %q)", st, err, out)
			}
			if out != tc.want {
				t.Errorf("output %q, want %q", out, tc.want)
			}
			h.assertNoTrace(h.drv.LastSpec().ID)
			os.RemoveAll(filepath.Join(root, "root/repo"))
		})
	}
}

// TestRunWithoutCommandRefusedBeforeAnyVM: an image that defines no
// command, given none, fails with a message saying what to do — after the
// image is known (pulled on first use) and before anything is reserved,
// booted or given a TAP.
func TestRunWithoutCommandRefusedBeforeAnyVM(t *testing.T) {
	h := newHarness(t)
	reg, push := ociRegistry(t)
	push("bare:1", map[string]string{"etc/os-release": "ID=bare\n"}, v1.Config{Env: []string{"ONLY=env"}})
	for _, tc := range []struct{ image, named string }{
		{"", "debian-bookworm"},     // the default image: no runtime recorded
		{reg + "/bare:1", "bare-1"}, // pulled by this run, then refused
		{"bare-1", "bare-1"},        // already here
	} {
		_, err := h.client.Stream(context.Background(), api.MethodVMRun,
			api.RunParams{Create: api.CreateParams{Name: "nocmd", Image: tc.image}, Remove: true}, nil, nil)
		want := "image " + tc.named + " defines no command: give one after --, e.g. banger vm run -- "
		if !isCode(err, api.CodeInvalid) || !strings.Contains(err.Error(), want) {
			t.Errorf("--image %q: %v, want %q", tc.image, err, want)
		}
	}
	if h.drv.Starts != 0 {
		t.Errorf("%d VMMs started", h.drv.Starts)
	}
	if ents, _ := os.ReadDir(filepath.Dir(h.paths.VMDir("x"))); len(ents) != 0 {
		t.Errorf("VM directories left: %d", len(ents))
	}
	h.assertNoTrace("none")
	var info api.ImageInfo
	must(t, h.call(api.MethodImageShow, api.NameParams{Name: "bare-1"}, &info))
	if !reflect.DeepEqual(info.Runtime, api.ImageRuntime{Env: []string{"ONLY=env"}}) {
		t.Errorf("bare-1 runtime %+v", info.Runtime)
	}
}

// vm exec runs a command in a running VM through its agent, with the
// request's env and dir; it refuses a stopped or unknown VM and an empty
// command without touching the VM.
func TestExecInRunningVM(t *testing.T) {
	h := newHarness(t)
	h.create("box")
	exec := h.exec
	dir := t.TempDir()
	out, st, err := exec(api.ExecParams{Name: "bo", ExecRequest: api.ExecRequest{Argv: []string{"sh", "-c", "echo $FOO; pwd; exit 4"}, Env: []string{"FOO=bar"}, Dir: dir}})
	if err != nil || st.Code != 4 || out != "bar\n"+dir+"\n" {
		t.Fatalf("exec: %q %+v %v", out, st, err)
	}
	if _, _, err := exec(api.ExecParams{Name: "box"}); !isCode(err, api.CodeInvalid) {
		t.Errorf("empty command: %v", err)
	}
	if _, _, err := exec(api.ExecParams{Name: "ghost", ExecRequest: api.ExecRequest{Argv: []string{"true"}}}); !isCode(err, api.CodeNotFound) {
		t.Errorf("unknown VM: %v", err)
	}
	must(t, h.call(api.MethodVMStop, api.NameParams{Name: "box"}, nil))
	if _, _, err := exec(api.ExecParams{Name: "box", ExecRequest: api.ExecRequest{Argv: []string{"true"}}}); !isCode(err, api.CodeConflict) || !strings.Contains(err.Error(), "banger vm start box") {
		t.Errorf("stopped VM: %v", err)
	}
	if h.drv.Starts != 1 {
		t.Errorf("exec started a VMM: %d starts", h.drv.Starts)
	}
}

// The image's User is who commands run as, unless the request names one;
// vm exec follows the same rule. (The fake VMM's agent runs commands on
// the host, as root, so it can switch to nobody.)
func TestRunAndExecAsImageUser(t *testing.T) {
	h := newHarness(t)
	reg, push := ociRegistry(t)
	// Its WorkingDir does not exist yet: it is created, as Docker does.
	base := t.TempDir()
	for _, d := range []string{base, filepath.Dir(base)} {
		os.Chmod(d, 0o755) // the nobody user must reach it
	}
	wd := filepath.Join(base, "app", "work")
	push("who:1", map[string]string{"etc/os-release": "ID=who\n"}, v1.Config{User: "nobody", WorkingDir: wd})
	var info api.ImageInfo
	must(t, h.call(api.MethodImagePull, api.PullImageParams{Ref: reg + "/who:1", Name: "who"}, &info))
	if info.Runtime.User != "nobody" {
		t.Fatalf("pulled runtime %+v", info.Runtime)
	}
	for _, tc := range []struct{ user, want string }{{"", "nobody " + wd + "\n"}, {"root", "root " + wd + "\n"}, {"0:0", "root " + wd + "\n"}} {
		out, st, err := h.run(api.RunParams{Create: api.CreateParams{Image: "who"}, Remove: true, ExecRequest: api.ExecRequest{User: tc.user, Argv: []string{"sh", "-c", `echo "$(id -un) $(pwd)"`}}})
		if err != nil || st.Code != 0 || out != tc.want {
			t.Errorf("run as %q: %q %+v %v, want %q", tc.user, out, st, err, tc.want)
		}
	}
	must(t, h.call(api.MethodVMCreate, api.CreateParams{Name: "w", Image: "who"}, nil))
	if out, st, err := h.exec(api.ExecParams{Name: "w", ExecRequest: api.ExecRequest{Argv: []string{"id", "-un"}}}); err != nil || st.Code != 0 || out != "nobody\n" {
		t.Errorf("exec: %q %+v %v", out, st, err)
	}
	out2, st, err := h.run(api.RunParams{Create: api.CreateParams{Image: "who"}, Remove: true, ExecRequest: api.ExecRequest{User: "no-such-user-x", Argv: []string{"true"}}})
	if err == nil && st.Code == 0 {
		t.Errorf("unknown user ran: %q", out2)
	} else if msg := fmt.Sprint(err) + st.Error; !strings.Contains(msg, "no such user") {
		t.Errorf("unknown user: %v %+v", err, st)
	}
}
