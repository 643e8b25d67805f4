package apikeys

import (
	"context"
	"errors"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/banger-dev/banger/internal/api"
	"github.com/banger-dev/banger/internal/store"
)

func newService(t *testing.T) *Service {
	t.Helper()
	st, err := store.Open(context.Background(), filepath.Join(t.TempDir(), "state.db"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	return New(st)
}

func TestCreateCheckListDelete(t *testing.T) {
	s, ctx := newService(t), context.Background()
	c, err := s.Create(ctx, api.APIKeyParams{Name: "ci"})
	if err != nil {
		t.Fatal(err)
	}
	if !strings.HasPrefix(c.Key, Prefix) || len(c.Key) != len(Prefix)+52 || !strings.HasPrefix(c.Key, c.Prefix) {
		t.Fatalf("key %q prefix %q", c.Key, c.Prefix)
	}
	if name, ok, err := s.Check(ctx, c.Key); err != nil || !ok || name != "ci" {
		t.Fatalf("check own key: %q %v %v", name, ok, err)
	}
	for _, bad := range []string{"", c.Key + "x", c.Key[:len(c.Key)-1], strings.ToUpper(c.Key)} {
		if _, ok, _ := s.Check(ctx, bad); ok {
			t.Errorf("key %q accepted", bad)
		}
	}
	if _, err := s.Create(ctx, api.APIKeyParams{Name: "ci"}); !isCode(err, api.CodeConflict) {
		t.Fatalf("same name: %v", err)
	}
	if _, err := s.Create(ctx, api.APIKeyParams{Name: "../x"}); !isCode(err, api.CodeInvalid) {
		t.Fatalf("bad name: %v", err)
	}
	list, err := s.List(ctx)
	if err != nil || len(list) != 1 || list[0].LastUsed.IsZero() {
		t.Fatalf("list: %+v %v", list, err)
	}
	// last use is kept to the minute, not written at every request
	first := list[0].LastUsed
	now := time.Now()
	s.Now = func() time.Time { return now.Add(30 * time.Second) }
	s.Check(ctx, c.Key)
	if list, _ := s.List(ctx); !list[0].LastUsed.Equal(first) {
		t.Fatalf("touched again after 30 s: %v → %v", first, list[0].LastUsed)
	}
	s.Now = func() time.Time { return now.Add(2 * time.Minute) }
	s.Check(ctx, c.Key)
	if list, _ := s.List(ctx); !list[0].LastUsed.After(first) {
		t.Fatalf("not touched after 2 min: %v", list[0].LastUsed)
	}
	if _, err := s.Delete(ctx, api.APIKeyParams{Name: "ci"}); err != nil {
		t.Fatal(err)
	}
	if _, ok, _ := s.Check(ctx, c.Key); ok {
		t.Fatal("a revoked key is still accepted")
	}
	if _, err := s.Delete(ctx, api.APIKeyParams{Name: "ci"}); !isCode(err, api.CodeNotFound) {
		t.Fatalf("delete again: %v", err)
	}
	if c2, err := s.Create(ctx, api.APIKeyParams{}); err != nil || !strings.HasPrefix(c2.Name, "key-") {
		t.Fatalf("unnamed: %+v %v", c2, err)
	}
}

func isCode(err error, code string) bool {
	var e *api.Error
	return errors.As(err, &e) && e.Code == code
}
