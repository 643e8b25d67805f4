package image

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"
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
