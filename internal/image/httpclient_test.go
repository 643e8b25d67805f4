package image

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"net/http/httputil"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/google/go-containerregistry/pkg/registry"
)

func setTimeoutsForTest(t *testing.T, header, idle time.Duration) {
	oldH, oldI := responseHeaderTimeout, readIdleTimeout
	responseHeaderTimeout, readIdleTimeout = header, idle
	defaultClientOnce = sync.Once{}
	t.Cleanup(func() {
		responseHeaderTimeout, readIdleTimeout = oldH, oldI
		defaultClientOnce = sync.Once{}
	})
}

// A server that sends half a bundle and then nothing ends the download
// after the idle timeout, keeps the partial file, and the next Fetch
// resumes from it.
func TestFetchStalledServerIsAbandonedAndResumed(t *testing.T) {
	setTimeoutsForTest(t, 2*time.Second, 300*time.Millisecond)
	data := []byte(strings.Repeat("bundle-bytes.", 40000))
	sum := sha256.Sum256(data)
	stall := make(chan struct{})
	defer close(stall)
	stalling := true
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if !stalling {
			http.ServeContent(w, r, "b", time.Time{}, strings.NewReader(string(data)))
			return
		}
		w.Header().Set("Content-Length", "520000")
		w.WriteHeader(http.StatusOK)
		w.Write(data[:len(data)/2])
		w.(http.Flusher).Flush()
		select {
		case <-stall:
		case <-r.Context().Done():
		}
	}))
	defer srv.Close()
	dest := filepath.Join(t.TempDir(), "b.tar.zst")
	d := Download{URL: srv.URL, SHA256: hex.EncodeToString(sum[:]), Size: int64(len(data)), Dest: dest}
	start := time.Now()
	err := Fetch(context.Background(), d)
	if !errors.Is(err, ErrStalled) || !strings.Contains(err.Error(), "no data for 300ms") {
		t.Fatalf("stalled fetch: %v", err)
	}
	if el := time.Since(start); el > 5*time.Second {
		t.Fatalf("took %s", el)
	}
	fi, err := os.Stat(dest + ".partial")
	if err != nil || fi.Size() != int64(len(data)/2) {
		t.Fatalf("partial: %v %v", fi, err)
	}
	stalling = false
	if err := Fetch(context.Background(), d); err != nil {
		t.Fatalf("resume: %v", err)
	}
}

// A server that accepts the connection but never answers is given up on
// after the response-header timeout.
func TestFetchSilentServerTimesOut(t *testing.T) {
	setTimeoutsForTest(t, 300*time.Millisecond, time.Minute)
	release := make(chan struct{})
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		select {
		case <-release:
		case <-r.Context().Done():
		}
	}))
	defer srv.Close()
	defer close(release)
	start := time.Now()
	_, err := FetchSmall(context.Background(), srv.URL+"/catalog.json", nil, 1<<20)
	if err == nil || !strings.Contains(err.Error(), "timeout awaiting response headers") {
		t.Fatalf("silent server: %v", err)
	}
	if el := time.Since(start); el > 5*time.Second {
		t.Fatalf("took %s", el)
	}
}

// A registry that stops sending in the middle of a layer ends the pull
// after the idle timeout instead of hanging it.
func TestPullOCIStalledRegistryTimesOut(t *testing.T) {
	setTimeoutsForTest(t, 2*time.Second, 300*time.Millisecond)
	reg := httptest.NewServer(registry.New(registry.Logger(nopLogger())))
	defer reg.Close()
	host := strings.TrimPrefix(reg.URL, "http://")
	pushImage(t, host+"/stall:1", "amd64", []tent{tdir("etc/"), tfile("etc/a", strings.Repeat("a", 64<<10))})
	stall := make(chan struct{})
	defer close(stall)
	var blobGets atomic.Int32
	front := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		// The config (the first blob) comes whole; a layer stops after
		// its first 100 bytes.
		if !strings.Contains(r.URL.Path, "/blobs/") || r.Method != http.MethodGet || blobGets.Add(1) == 1 {
			httputil.NewSingleHostReverseProxy(&url.URL{Scheme: "http", Host: host}).ServeHTTP(w, r)
			return
		}
		resp, err := http.Get(reg.URL + r.URL.Path)
		if err != nil {
			http.Error(w, err.Error(), http.StatusBadGateway)
			return
		}
		defer resp.Body.Close()
		w.Header().Set("Content-Length", resp.Header.Get("Content-Length"))
		w.WriteHeader(resp.StatusCode)
		io.CopyN(w, resp.Body, 100)
		w.(http.Flusher).Flush()
		select {
		case <-stall:
		case <-r.Context().Done():
		}
	}))
	defer front.Close()
	out, err := os.Create(filepath.Join(t.TempDir(), "img.ext4"))
	if err != nil {
		t.Fatal(err)
	}
	defer out.Close()
	start := time.Now()
	_, _, err = PullOCI(context.Background(), OCIOptions{Ref: strings.TrimPrefix(front.URL, "http://") + "/stall:1", BlobDir: t.TempDir()}, out)
	if !errors.Is(err, ErrStalled) {
		t.Fatalf("pull from a stalled registry: %v", err)
	}
	if el := time.Since(start); el > 10*time.Second {
		t.Fatalf("took %s", el)
	}
}
