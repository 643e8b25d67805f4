package cli_test

import (
	"context"
	"errors"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/banger-dev/banger/internal/api"
	"github.com/banger-dev/banger/internal/rpc"
)

// exportDaemon answers image.export with a bundle streamed in the
// response body; it records the catalog the CLI sent, and fails after
// the bundle when fail is set.
func exportDaemon(t *testing.T, fail bool, sent chan<- string) *fakeDaemon {
	return startDaemon(t, map[string]rpc.Handler{api.MethodImageExport: func(_ context.Context, c *rpc.Call) (any, error) {
		var p api.ExportImageParams
		if err := c.Decode(&p); err != nil {
			return nil, err
		}
		cat, err := io.ReadAll(c.Body())
		if err != nil {
			return nil, err
		}
		sent <- p.URL + "|" + string(cat)
		if _, err := c.Write([]byte("BUNDLE-BYTES")); err != nil {
			return nil, err
		}
		if fail {
			return nil, errors.New("disk full on the daemon")
		}
		return api.ExportResult{Entry: api.CatalogEntry{Name: p.Name, URL: p.URL, SHA256: "ab", Size: 12}, CatalogFile: "{\"new\":true}\n"}, nil
	}})
}

// The CLI writes the bundle the daemon streams, and the catalog it
// returns, where -o and --catalog say, relative to the CLI's directory.
func TestImageExportWritesTheStreamedBundle(t *testing.T) {
	dir := t.TempDir()
	t.Chdir(dir)
	if err := os.WriteFile("catalog.json", []byte(`{"old":true}`), 0o644); err != nil {
		t.Fatal(err)
	}
	sent := make(chan string, 1)
	f := exportDaemon(t, false, sent)
	code, out, errs := runWith(t, f, "image", "export", "base", "-o", "pub/base.tar.zst", "--catalog", "catalog.json")
	if code == 0 {
		t.Fatalf("export into a missing directory: exit 0 (%q)", out)
	}
	if err := os.Mkdir("pub", 0o755); err != nil {
		t.Fatal(err)
	}
	code, out, errs = runWith(t, f, "image", "export", "base", "-o", "pub/base.tar.zst", "--catalog", "catalog.json")
	if code != 0 {
		t.Fatalf("exit %d: %s", code, errs)
	}
	if got := <-sent; got != `pub/base.tar.zst|{"old":true}` {
		t.Errorf("daemon got %q, want the URL relative to the catalog and the old catalog", got)
	}
	b, _ := os.ReadFile(filepath.Join(dir, "pub", "base.tar.zst"))
	c, _ := os.ReadFile(filepath.Join(dir, "catalog.json"))
	if string(b) != "BUNDLE-BYTES" || string(c) != "{\"new\":true}\n" {
		t.Errorf("bundle %q, catalog %q", b, c)
	}
	if !strings.Contains(out, "wrote "+filepath.Join(dir, "pub", "base.tar.zst")) || !strings.Contains(out, "added to "+filepath.Join(dir, "catalog.json")) {
		t.Errorf("output %q", out)
	}
	assertOnly(t, dir, "catalog.json", "pub", "pub/base.tar.zst")
}

// A daemon that fails after streaming part of the bundle leaves neither
// a bundle nor a changed catalog.
func TestImageExportFailureWritesNothing(t *testing.T) {
	dir := t.TempDir()
	t.Chdir(dir)
	if err := os.WriteFile("catalog.json", []byte(`{"old":true}`), 0o644); err != nil {
		t.Fatal(err)
	}
	sent := make(chan string, 1)
	f := exportDaemon(t, true, sent)
	code, _, errs := runWith(t, f, "image", "export", "base", "-o", "base.tar.zst")
	if code == 0 || !strings.Contains(errs, "disk full on the daemon") {
		t.Fatalf("exit %d: %q", code, errs)
	}
	if c, _ := os.ReadFile("catalog.json"); string(c) != `{"old":true}` {
		t.Errorf("catalog changed to %q", c)
	}
	assertOnly(t, dir, "catalog.json")
}

// assertOnly checks that dir holds exactly the given paths.
func assertOnly(t *testing.T, dir string, want ...string) {
	t.Helper()
	var got []string
	filepath.WalkDir(dir, func(p string, _ os.DirEntry, err error) error {
		if rel, _ := filepath.Rel(dir, p); rel != "." {
			got = append(got, rel)
		}
		return err
	})
	if strings.Join(got, ",") != strings.Join(want, ",") {
		t.Errorf("%s holds %v, want %v", dir, got, want)
	}
}
