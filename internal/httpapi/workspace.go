package httpapi

import (
	"archive/tar"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"strings"

	agentclient "github.com/banger-dev/banger/internal/agent/client"
	"github.com/banger-dev/banger/internal/agent/proto"
	"github.com/banger-dev/banger/internal/api"
	"github.com/banger-dev/banger/internal/progress"
	"github.com/banger-dev/banger/internal/store"
	"github.com/banger-dev/banger/internal/vms"
	"github.com/banger-dev/banger/internal/workspaces"
)

// MaxUploadBody bounds an uploaded workspace archive.
const MaxUploadBody = 2 << 30

// maxPatch bounds an exported patch (kept in a temporary file until the
// command's exit status is known).
const maxPatch = 1 << 30

// Workspaces is the workspace service (*workspaces.Service).
type Workspaces interface {
	Prepare(ctx context.Context, p api.WorkspacePrepareParams, archive io.Reader, r progress.Reporter) (api.Workspace, error)
	Export(ctx context.Context, p api.WorkspaceExportParams) (workspaces.VM, proto.ExecRequest, error)
}

// Execs opens exec streams in VMs (*vms.Service), for export.
type Execs interface {
	Resolve(ctx context.Context, name string) (store.VM, error)
	OpenExec(ctx context.Context, vm store.VM, method string, req proto.ExecRequest, ended func()) (*vms.Session, error)
}

func (s *Server) workspaceRoutes() {
	s.mux.HandleFunc("POST /banger/sandboxes/{id}/workspace", s.workspaceImport)
	s.mux.HandleFunc("GET /banger/sandboxes/{id}/workspace/patch", s.workspaceExport)
}

// workspaceImport copies an uploaded tar archive (a repository with its
// .git, as `vm workspace prepare` sends one) to ?path= (default
// /root/repo) in a running sandbox: all or nothing, a path that exists
// is refused. Entries are re-written one by one, so only files,
// directories and symlinks with clean names reach the agent, which
// checks them again.
func (s *Server) workspaceImport(w http.ResponseWriter, r *http.Request) {
	vm, _, ok := s.find(w, r)
	if !ok {
		return
	}
	if s.d.Workspaces == nil {
		notImplemented(w, "workspace import")
		return
	}
	pr, pw := io.Pipe()
	go func() {
		tr := tar.NewReader(r.Body)
		fillErr, ioErr := agentclient.WriteArchive(pw, func(tw *agentclient.TarWriter) error {
			for {
				h, err := tr.Next()
				if err == io.EOF {
					return nil
				}
				if err != nil {
					return fmt.Errorf("the uploaded archive: %w", err)
				}
				// `tar -C dir -cf - .` names entries ./x, and the top "./"
				if h.Name = strings.TrimPrefix(h.Name, "./"); h.Name == "" {
					continue
				}
				if err := tw.WriteHeader(h); err != nil {
					return err
				}
				if _, err := io.Copy(tw, tr); err != nil {
					return err
				}
			}
		})
		pw.CloseWithError(errors.Join(fillErr, ioErr))
	}()
	defer pr.Close()
	res, err := s.d.Workspaces.Prepare(r.Context(), api.WorkspacePrepareParams{Name: vm.Name,
		WorkspaceSpec: api.WorkspaceSpec{GuestPath: r.URL.Query().Get("path"), Summary: "uploaded archive"}}, pr, nil)
	if err != nil {
		var tooBig *http.MaxBytesError
		if errors.As(err, &tooBig) {
			writeError(w, http.StatusRequestEntityTooLarge, fmt.Sprintf("archive over %d bytes (nothing was kept)", tooBig.Limit))
			return
		}
		if strings.Contains(err.Error(), "the uploaded archive") {
			writeError(w, http.StatusBadRequest, err.Error()+" (nothing was kept)")
			return
		}
		fail(w, err)
		return
	}
	writeJSON(w, http.StatusCreated, res)
}

// workspaceExport answers the workspace's changes since its import as
// one patch for `git apply` (text/x-patch; ?base=, ?path=, ?name_only=1
// as for `vm workspace export`).
func (s *Server) workspaceExport(w http.ResponseWriter, r *http.Request) {
	vm, _, ok := s.find(w, r)
	if !ok {
		return
	}
	if s.d.Workspaces == nil || s.d.Execs == nil {
		notImplemented(w, "workspace export")
		return
	}
	q := r.URL.Query()
	wv, req, err := s.d.Workspaces.Export(r.Context(), api.WorkspaceExportParams{Name: vm.Name, GuestPath: q.Get("path"),
		Base: q.Get("base"), NameOnly: q.Get("name_only") == "1"})
	if err != nil {
		fail(w, err)
		return
	}
	sv, err := s.d.Execs.Resolve(r.Context(), wv.ID)
	if err != nil {
		fail(w, err)
		return
	}
	sess, err := s.d.Execs.OpenExec(r.Context(), sv, api.MethodWorkspaceExport, req, func() {})
	if err != nil {
		fail(w, err)
		return
	}
	patch, err := os.CreateTemp("", "banger-patch-")
	if err != nil {
		sess.Abort()
		fail(w, err)
		return
	}
	defer os.Remove(patch.Name())
	defer patch.Close()
	ours, theirs := net.Pipe()
	sess.Relay(vms.Client{Conn: theirs})
	var stderr bytes.Buffer
	st, err := proto.PumpExec(ours, nil, &limited{w: patch, n: maxPatch}, &limited{w: &stderr, n: 64 << 10}, nil)
	ours.Close()
	switch {
	case err != nil:
		fail(w, fmt.Errorf("export from %s: %w", vm.Name, err))
	case st.Code != 0 || st.Error != "":
		writeError(w, http.StatusConflict, fmt.Sprintf("export from %s failed (exit %d): %s%s", vm.Name, st.Code, st.Error, strings.TrimSpace(stderr.String())))
	default:
		w.Header().Set("Content-Type", "text/x-patch")
		patch.Seek(0, io.SeekStart)
		io.Copy(w, patch)
	}
}

// limited writes at most n bytes to w, then fails.
type limited struct {
	w io.Writer
	n int64
}

func (l *limited) Write(p []byte) (int, error) {
	if int64(len(p)) > l.n {
		return 0, fmt.Errorf("output over its bound")
	}
	l.n -= int64(len(p))
	return l.w.Write(p)
}
