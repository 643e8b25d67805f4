package e2e

import (
	"archive/tar"
	"context"
	"fmt"
	"math/rand"
	"os"
	"path/filepath"
	"runtime"
	"testing"
	"time"

	kgzip "github.com/klauspost/compress/gzip"

	"github.com/banger-dev/banger/internal/image"
)

// TestBenchImageFlatten measures flattening a ~500 MB, five-layer image
// (gzip layers as registries serve them) into ext4 with banger's
// flattener, against the baseline of extracting the same layers with tar
// into a directory and running mkfs.ext4 -d on it, in the same run. It
// runs only from `make bench` (BANGER_BENCH=1); times are reported, not
// asserted. Needs no VM and no root beyond what tar's ownership needs.
func TestBenchImageFlatten(t *testing.T) {
	rounds := benchRounds(t)
	work := t.TempDir()
	var layers []image.Layer
	var raw int64
	start := time.Now()
	for i := 0; i < 5; i++ {
		p := filepath.Join(work, fmt.Sprintf("layer%d.tar.gz", i))
		raw += writeBenchLayer(t, p, i)
		l, err := image.LayerFromFile(p)
		must(t, err)
		layers = append(layers, l)
	}
	t.Logf("generated 5 layers, %d MiB uncompressed, in %s", raw>>20, time.Since(start).Round(time.Millisecond))

	var ours, base []time.Duration
	var oursSize, baseSize int64
	for r := 0; r < rounds; r++ {
		out := filepath.Join(work, "flat.ext4")
		f, err := os.Create(out)
		must(t, err)
		start := time.Now()
		if _, err := image.Flatten(context.Background(), layers, f, image.FlattenOptions{}); err != nil {
			t.Fatal(err)
		}
		must(t, f.Sync())
		ours = append(ours, time.Since(start))
		st, _ := f.Stat()
		oursSize = st.Size()
		f.Close()
		os.Remove(out)

		dir := filepath.Join(work, "tree")
		img := filepath.Join(work, "base.ext4")
		start = time.Now()
		must(t, os.MkdirAll(dir, 0o755))
		for i := range layers {
			sh(t, "tar", "-xzf", filepath.Join(work, fmt.Sprintf("layer%d.tar.gz", i)), "-C", dir)
		}
		size := fmt.Sprintf("%dM", raw*13/10>>20+64)
		sh(t, "mkfs.ext4", "-q", "-F", "-d", dir, img, size)
		sh(t, "sync", "-f", img)
		base = append(base, time.Since(start))
		st, _ = os.Stat(img)
		baseSize = st.Size()
		os.RemoveAll(dir)
		os.Remove(img)
	}
	mo, mb := median(ours), median(base)
	body := fmt.Sprintf(`## Image flatten: 5 gzip layers → ext4

%d MiB of files in 5 gzip layers (small, medium and large files; upper
layers replace some lower files), %d rounds, medians; %d CPUs.

| method | time | ratio |
|---|---|---|
| banger: layers → tar stream → tar2ext4, in process | %s | %.2f× |
| baseline: `+"`tar -xzf`"+` each layer into a directory, then `+"`mkfs.ext4 -d`"+` | %s | 1.00× |

banger's image is %d MiB (sized to its contents), the baseline's %d MiB
(sparse; mkfs needs a size up front). Goal: ≤ 1.2× the baseline.
`, raw>>20, rounds, runtime.NumCPU(), mo.Round(10*time.Millisecond), float64(mo)/float64(mb), mb.Round(10*time.Millisecond), oursSize>>20, baseSize>>20)
	writeBenchSection(t, "image-flatten", body)
}

// writeBenchLayer writes one gzip tar layer of about 100 MiB and returns
// its uncompressed size. Contents compress about 2:1, like binaries.
func writeBenchLayer(t *testing.T, path string, layer int) int64 {
	f, err := os.Create(path)
	must(t, err)
	defer f.Close()
	zw := kgzip.NewWriter(f)
	tw := tar.NewWriter(zw)
	rng := rand.New(rand.NewSource(int64(layer)))
	var total int64
	add := func(name string, size int) {
		b := make([]byte, size)
		for i := 0; i < size; i += 128 {
			rng.Read(b[i:min(i+64, size)]) // half random, half zeros
		}
		must(t, tw.WriteHeader(&tar.Header{Name: name, Typeflag: tar.TypeReg, Mode: 0o644, Size: int64(size), ModTime: time.Unix(1700000000, 0)}))
		_, err := tw.Write(b)
		must(t, err)
		total += int64(size)
	}
	dirs := []string{"usr/", "usr/lib/", fmt.Sprintf("usr/lib/l%d/", layer), "usr/share/", fmt.Sprintf("usr/share/s%d/", layer)}
	for _, d := range dirs {
		must(t, tw.WriteHeader(&tar.Header{Name: d, Typeflag: tar.TypeDir, Mode: 0o755, ModTime: time.Unix(1700000000, 0)}))
	}
	for i := 0; i < 2000; i++ {
		add(fmt.Sprintf("usr/share/s%d/f%04d", layer, i), 4096)
	}
	for i := 0; i < 10; i++ {
		add(fmt.Sprintf("usr/lib/l%d/m%02d.so", layer, i), 2<<20)
	}
	for i := 0; i < 3; i++ {
		// The same paths in every layer: upper layers replace them.
		add(fmt.Sprintf("usr/lib/big%d", i), 24<<20)
	}
	must(t, tw.Close())
	must(t, zw.Close())
	return total
}
