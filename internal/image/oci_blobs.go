package image

import (
	"os"
	"path/filepath"
	"strings"
	"sync"
	"time"
)

// Layer blobs in the blob cache are shared by concurrent pulls (two images
// often share a base layer). A pull holds the blobs it uses; a blob is
// deleted only when the last holder releases it after a successful pull.
var blobRefs = struct {
	sync.Mutex
	n map[string]int
}{n: map[string]int{}}

func acquireBlobs(digests []string) {
	blobRefs.Lock()
	defer blobRefs.Unlock()
	for _, d := range digests {
		blobRefs.n[d]++
	}
}

// ReleaseBlobs drops a pull's hold on its layer blobs. With remove (the
// pull succeeded, so the image holds everything they did) blobs no other
// pull holds are deleted; after a failure they stay so a re-run resumes.
func ReleaseBlobs(dir string, digests []string, remove bool) {
	blobRefs.Lock()
	defer blobRefs.Unlock()
	for _, d := range digests {
		blobRefs.n[d]--
		if blobRefs.n[d] > 0 {
			continue
		}
		delete(blobRefs.n, d)
		if remove {
			os.Remove(filepath.Join(dir, strings.Replace(d, ":", "-", 1)))
		}
	}
}

// SweepBlobs removes interrupted downloads and blobs of pulls abandoned
// longer than maxAge ago. The daemon calls it at start, before any pull.
func SweepBlobs(dir string, maxAge time.Duration) {
	ents, _ := os.ReadDir(dir)
	for _, e := range ents {
		info, err := e.Info()
		if err != nil {
			continue
		}
		if strings.Contains(e.Name(), ".partial-") || time.Since(info.ModTime()) > maxAge {
			os.Remove(filepath.Join(dir, e.Name()))
		}
	}
}
