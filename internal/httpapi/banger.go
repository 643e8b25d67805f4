package httpapi

import (
	"context"
	_ "embed"
	"net/http"

	"github.com/banger-dev/banger/internal/api"
	"github.com/banger-dev/banger/internal/progress"
)

// openapiDoc describes banger's own routes (what E2B's API has no word
// for); E2B's are as in its published openapi.yml.
//
//go:embed openapi.json
var openapiDoc []byte

// Snapshots are the VM service's snapshot methods (*vms.Service).
type Snapshots interface {
	SnapshotCreate(ctx context.Context, p api.SnapshotParams, r progress.Reporter) (api.Snapshot, error)
	SnapshotList(ctx context.Context, name string) ([]api.Snapshot, error)
	SnapshotRestore(ctx context.Context, p api.SnapshotParams, r progress.Reporter) (api.VM, error)
	SnapshotDelete(ctx context.Context, p api.SnapshotParams) (api.Snapshot, error)
}

func (s *Server) bangerRoutes() {
	m := s.mux
	m.HandleFunc("GET /openapi.json", func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		w.Write(openapiDoc)
	})
	s.workspaceRoutes()
	m.HandleFunc("GET /banger/images", func(w http.ResponseWriter, r *http.Request) {
		imgs, err := s.d.Images.List(r.Context())
		answer(w, http.StatusOK, imgs, err)
	})
	m.HandleFunc("GET /banger/sandboxes/{id}/snapshots", func(w http.ResponseWriter, r *http.Request) {
		if vm, _, ok := s.find(w, r); ok {
			list, err := s.d.Snapshots.SnapshotList(r.Context(), vm.Name)
			answer(w, http.StatusOK, list, err)
		}
	})
	m.HandleFunc("POST /banger/sandboxes/{id}/snapshots", func(w http.ResponseWriter, r *http.Request) {
		var p struct {
			Name string `json:"name"`
		}
		if vm, _, ok := s.decodeFind(w, r, &p, true); ok {
			sn, err := s.d.Snapshots.SnapshotCreate(context.WithoutCancel(r.Context()), api.SnapshotParams{Name: vm.Name, Snapshot: p.Name}, nil)
			answer(w, http.StatusCreated, sn, err)
		}
	})
	m.HandleFunc("POST /banger/sandboxes/{id}/snapshots/{snap}/restore", func(w http.ResponseWriter, r *http.Request) {
		var p struct {
			Force bool `json:"force"`
		}
		if vm, _, ok := s.decodeFind(w, r, &p, true); ok {
			got, err := s.d.Snapshots.SnapshotRestore(context.WithoutCancel(r.Context()),
				api.SnapshotParams{Name: vm.Name, Snapshot: r.PathValue("snap"), Force: p.Force}, nil)
			answer(w, http.StatusOK, got, err)
		}
	})
	m.HandleFunc("DELETE /banger/sandboxes/{id}/snapshots/{snap}", func(w http.ResponseWriter, r *http.Request) {
		if vm, _, ok := s.find(w, r); ok {
			_, err := s.d.Snapshots.SnapshotDelete(r.Context(), api.SnapshotParams{Name: vm.Name, Snapshot: r.PathValue("snap")})
			answer(w, http.StatusNoContent, nil, err)
		}
	})
}

// answer writes v with status, or err.
func answer(w http.ResponseWriter, status int, v any, err error) {
	switch {
	case err != nil:
		fail(w, err)
	case status == http.StatusNoContent:
		w.WriteHeader(status)
	default:
		writeJSON(w, status, v)
	}
}
