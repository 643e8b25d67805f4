package daemon

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"testing"
	"time"

	"github.com/banger-dev/banger/internal/api"
	"github.com/banger-dev/banger/internal/benchdoc"
	"github.com/banger-dev/banger/internal/store"
	"github.com/banger-dev/banger/internal/vmm"
)

// TestBenchLifecycle measures the host-side cost of a create (request →
// VMM start) for a 1 GiB and an 8 GiB image, which must not grow with the
// image size because images are never copied, and `vm ls` latency with 50
// VM records. Run by `make bench` (BANGER_BENCH=1); nothing is asserted.
func TestBenchLifecycle(t *testing.T) {
	if os.Getenv("BANGER_BENCH") != "1" {
		t.Skip("benchmark: run by `make bench` (BANGER_BENCH=1), which writes docs/benchmarks.md")
	}
	h := newHarness(t)
	var started time.Time
	h.drv.StartHook = func(ctx context.Context, spec vmm.Spec) error {
		started = time.Now()
		return nil
	}
	st, err := store.Open(context.Background(), h.paths.Database())
	must(t, err)
	createCost := map[string]time.Duration{}
	for _, size := range []int64{1 << 30, 8 << 30} {
		name := fmt.Sprintf("img-%dg", size>>30)
		path := filepath.Join(h.paths.CacheDir, name+".ext4")
		f, _ := os.Create(path)
		must(t, f.Truncate(size))
		f.Close()
		must(t, st.PutImage(context.Background(), store.Image{Name: name, Path: path, SizeBytes: size, Source: "bench"}))
		var runs []time.Duration
		for i := 0; i < 5; i++ {
			vmName := fmt.Sprintf("c%d-%d", size>>30, i)
			begin := time.Now()
			must(t, h.call(api.MethodVMCreate, api.CreateParams{Name: vmName, Image: name, DiskSize: "8G"}, nil))
			runs = append(runs, started.Sub(begin))
			must(t, h.call(api.MethodVMDelete, api.NameParams{Name: vmName}, nil))
		}
		createCost[name] = median(runs)
	}
	for i := 0; i < 50; i++ {
		v := store.VM{ID: fmt.Sprintf("bench%02d", i), Name: fmt.Sprintf("rec%02d", i), Image: "img-1g", Kernel: "debian-cloud",
			VMM: "fake", VCPU: 1, MemoryMiB: 512, DiskBytes: 1 << 30, MAC: "52:54:00:00:00:01", State: store.StateStopped}
		must(t, st.ReserveVM(context.Background(), &v, h.net.Subnet(), h.net.Gateway()))
	}
	st.Close()
	var ls []time.Duration
	for i := 0; i < 30; i++ {
		begin := time.Now()
		var vms []api.VM
		must(t, h.call(api.MethodVMList, nil, &vms))
		ls = append(ls, time.Since(begin))
		if len(vms) != 50 {
			t.Fatalf("listed %d VMs", len(vms))
		}
	}
	ms := func(d time.Duration) string { return fmt.Sprintf("%.1f ms", float64(d.Microseconds())/1000) }
	body := fmt.Sprintf(`## VM lifecycle: host-side costs

Written by `+"`make bench`"+` on %s. Machine: %s. In-process daemon with
the fake VMM driver, so only banger's host-side work is timed: sparse disks
with mkfs.ext4, host keys, config drive, initramfs (cached), network, store.

| what | median |
|---|---|
| create, request → VMM start, 1 GiB image (5 runs) | %s |
| create, request → VMM start, 8 GiB image (5 runs) | %s |
| `+"`vm ls`"+` with 50 VM records, round trip over the socket (30 runs) | %s |

The image is shared read-only and never copied, so the create cost does not
depend on its size.
`, time.Now().UTC().Format("2006-01-02 15:04 UTC"), benchdoc.Machine(), ms(createCost["img-1g"]), ms(createCost["img-8g"]), ms(median(ls)))
	wd, _ := os.Getwd()
	path, err := benchdoc.Path(wd)
	must(t, err)
	must(t, benchdoc.WriteSection(path, "lifecycle", body))
	t.Log("\n" + body)
}

func median(ds []time.Duration) time.Duration {
	s := append([]time.Duration(nil), ds...)
	sort.Slice(s, func(i, j int) bool { return s[i] < s[j] })
	return s[len(s)/2]
}
