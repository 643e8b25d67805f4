package httpapi

import (
	"archive/tar"
	"bytes"
	"context"
	"encoding/json"
	"io"
	"strings"
	"testing"

	agentclient "github.com/banger-dev/banger/internal/agent/client"
	"github.com/banger-dev/banger/internal/agent/proto"
	"github.com/banger-dev/banger/internal/api"
	"github.com/banger-dev/banger/internal/progress"
	"github.com/banger-dev/banger/internal/store"
	"github.com/banger-dev/banger/internal/vms"
	"github.com/banger-dev/banger/internal/workspaces"
)

// fakeWorkspaces reads an import's archive as the agent does (entries,
// then the trailer) and answers exports with a script's output.
type fakeWorkspaces struct {
	names  []string
	err    error
	patch  string
	exit   int
	opened bool
}

func (f *fakeWorkspaces) Prepare(ctx context.Context, p api.WorkspacePrepareParams, archive io.Reader, _ progress.Reporter) (api.Workspace, error) {
	f.names = nil
	tl, err := agentclient.ReadArchive(archive, func(h *tar.Header, r io.Reader) error {
		f.names = append(f.names, h.Name)
		_, err := io.Copy(io.Discard, r)
		return err
	})
	if err != nil {
		return api.Workspace{}, err
	}
	if f.err != nil {
		return api.Workspace{}, f.err
	}
	return api.Workspace{VM: p.Name, GuestPath: p.GuestPath, Files: int(tl.Entries)}, nil
}

func (f *fakeWorkspaces) Export(ctx context.Context, p api.WorkspaceExportParams) (workspaces.VM, proto.ExecRequest, error) {
	return workspaces.VM{ID: "id-" + p.Name, Name: p.Name}, proto.ExecRequest{Argv: []string{"export"}}, nil
}

func (f *fakeWorkspaces) Resolve(ctx context.Context, name string) (store.VM, error) {
	return store.VM{ID: name}, nil
}

// OpenExec answers as the agent would: the patch on stdout, the exit.
func (f *fakeWorkspaces) OpenExec(ctx context.Context, vm store.VM, method string, req proto.ExecRequest, ended func()) (*vms.Session, error) {
	f.opened = true
	return vms.NewSessionForTest(api.VM{}, func(c vms.Client) {
		go func() {
			defer c.Conn.Close()
			go io.Copy(io.Discard, c.R) // the stdin EOF frame
			proto.WriteFrame(c.Conn, proto.FrameStdout, []byte(f.patch))
			if f.exit != 0 {
				proto.WriteFrame(c.Conn, proto.FrameStderr, []byte("fatal: bad revision"))
			}
			b, _ := json.Marshal(proto.ExitStatus{Code: f.exit})
			proto.WriteFrame(c.Conn, proto.FrameExit, b)
		}()
	}, func() {}), nil
}

func tarOf(t *testing.T, names ...string) string {
	var b bytes.Buffer
	tw := tar.NewWriter(&b)
	for _, n := range names {
		tw.WriteHeader(&tar.Header{Name: n, Mode: 0o644, Size: 2, Typeflag: tar.TypeReg})
		tw.Write([]byte("hi"))
	}
	tw.Close()
	return b.String()
}

func TestWorkspaceImportExport(t *testing.T) {
	r := newRig(t)
	id := r.create(`{"templateID":"base"}`)
	st, body := r.do("POST", "/banger/sandboxes/"+id+"/workspace", tarOf(t, "a"))
	wantError(t, st, body, 501, "workspace import")
	ws := &fakeWorkspaces{patch: "diff --git a/a b/a\n"}
	r.build(Deps{Workspaces: ws, Execs: ws})
	st, body = r.do("POST", "/banger/sandboxes/"+id+"/workspace?path=/root/x", tarOf(t, "./", "./a", "dir/b"))
	if got := decodeAs[api.Workspace](t, body); st != 201 || got.Files != 2 || got.GuestPath != "/root/x" || strings.Join(ws.names, ",") != "a,dir/b" {
		t.Fatalf("import: %d %s (%v)", st, body, ws.names)
	}
	// not a tar: the agent gets no trailer, so keeps nothing
	st, body = r.do("POST", "/banger/sandboxes/"+id+"/workspace", strings.Repeat("x", 1000))
	wantError(t, st, body, 400, "the uploaded archive")
	ws.err = api.Conflictf("import into %s: /root/repo exists", id)
	st, body = r.do("POST", "/banger/sandboxes/"+id+"/workspace", tarOf(t, "a"))
	wantError(t, st, body, 409, "exists")
	// bigger than a JSON body may be: accepted on this route
	big := tarOf(t, "a") + strings.Repeat("\x00", MaxJSONBody)
	ws.err = nil
	if st, body := r.do("POST", "/banger/sandboxes/"+id+"/workspace", big); st != 201 {
		t.Fatalf("a 1 MiB+ archive: %d %s", st, body)
	}
	st, body = r.do("GET", "/banger/sandboxes/"+id+"/workspace/patch", "")
	if st != 200 || body != ws.patch || !ws.opened {
		t.Fatalf("export: %d %q", st, body)
	}
	ws.exit = 128
	st, body = r.do("GET", "/banger/sandboxes/"+id+"/workspace/patch?base=nope", "")
	wantError(t, st, body, 409, "bad revision")
	if st, _ := r.do("GET", "/banger/sandboxes/nope/workspace/patch", ""); st != 404 {
		t.Fatalf("unknown sandbox: %d", st)
	}
}
