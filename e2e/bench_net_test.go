package e2e

import (
	"context"
	"fmt"
	"log/slog"
	"net"
	"net/netip"
	"os"
	"path/filepath"
	"runtime"
	"sort"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/miekg/dns"
	"github.com/vishvananda/netns"

	"github.com/banger-dev/banger/internal/api"
	"github.com/banger-dev/banger/internal/client"
	"github.com/banger-dev/banger/internal/config"
	"github.com/banger-dev/banger/internal/hostnet"
)

// TestBenchNet measures host networking: the time a VM create spends on
// networking (bridge, NAT, DNS, TAP) cold and with the TAP pool warm, a
// TAP from the pool against a freshly created one, and the queries per
// second banger's DNS answers for `<name>.vm`. Only from `make bench`
// (BANGER_BENCH=1); reported, never asserted. All load stays inside
// network namespaces this test creates, bounded in count and time.
func TestBenchNet(t *testing.T) {
	rounds := benchRounds(t)
	const tapRounds = 40
	fresh, pooled := benchTAPs(t, tapRounds)

	e := newEnv(t)
	run(t, "ip", "-n", e.ns, "link", "set", "lo", "up")
	// banger's DNS needs an upstream to start; the load asks only .vm.
	dir := filepath.Join("/etc/netns", e.ns)
	must(t, os.MkdirAll(dir, 0o755))
	must(t, os.WriteFile(filepath.Join(dir, "resolv.conf"), []byte("nameserver 127.0.0.1\n"), 0o644))
	t.Cleanup(func() {
		os.RemoveAll(dir)
		os.Remove("/etc/netns")
	})
	e.must("daemon", "start")
	c := &client.Client{Paths: config.Paths{
		ConfigDir: filepath.Join(e.home, "config", "banger"), StateDir: e.stateDir(),
		CacheDir: filepath.Join(os.Getenv("BANGER_E2E_CACHE"), "banger"), RuntimeDir: e.runtimeDir()}}

	var netTimes []time.Duration
	name := ""
	for i := 0; i < rounds; i++ {
		if name != "" {
			e.must("vm", "delete", name)
		}
		name = fmt.Sprintf("bench%d", i)
		var atNet, atBoot float64
		var vm api.VM
		err := c.Call(context.Background(), api.MethodVMCreate, api.CreateParams{Name: name}, &vm, func(p api.Progress) {
			switch p.Stage {
			case "network":
				atNet = p.Elapsed
			case "boot":
				atBoot = p.Elapsed
			}
		})
		if err != nil {
			t.Fatalf("create %s: %v", name, err)
		}
		netTimes = append(netTimes, time.Duration((atBoot-atNet)*float64(time.Second)))
	}
	qps, p50, p99, answered := benchDNS(t, e, name+".vm.")
	e.must("vm", "delete", name)
	e.must("network", "teardown")

	ms := func(d time.Duration) string { return fmt.Sprintf("%.2f ms", float64(d.Microseconds())/1000) }
	report := fmt.Sprintf(`## Host networking

Written by `+"`make bench`"+` on %s. Machine: %d cores, all inside network
namespaces the benchmark creates.

| what | time |
|---|---|
| create: networking stage (bridge + NAT + forwarding + DNS + TAP), first VM on a bare host | %s |
| create: networking stage with everything up and the TAP pool warm (median of %d) | %s |
| a VM's TAP taken from the pool (rename + up; median of %d) | %s |
| a VM's TAP created fresh (open /dev/net/tun, create, attach, tag, up; median of %d) | %s |

DNS: **%.0f queries/s** for `+"`%s`"+` (A, answered by banger's server on
10.77.0.1:42069 over UDP; 8 closed-loop clients in the test namespace, %d
answers in at most 5 s; latency p50 %s, p99 %s) while that VM idles under
QEMU on the same 2 cores.
`, time.Now().UTC().Format("2006-01-02 15:04 UTC"), runtime.NumCPU(),
		ms(netTimes[0]), len(netTimes)-1, ms(median(netTimes[1:])), tapRounds, ms(pooled), tapRounds, ms(fresh),
		qps, name+".vm", answered, ms(p50), ms(p99))
	writeBenchSection(t, "network", report)
}

// benchTAPs times CreateTAP without and with the pool, in a namespace of
// its own on this locked thread.
func benchTAPs(t *testing.T, n int) (fresh, pooled time.Duration) {
	runtime.LockOSThread()
	orig, err := netns.Get()
	must(t, err)
	ns, err := netns.New()
	must(t, err)
	defer func() {
		if netns.Set(orig) == nil {
			runtime.UnlockOSThread()
		}
		ns.Close()
		orig.Close()
	}()
	ctx := context.Background()
	for _, pool := range []int{-1, 2} {
		l := hostnet.NewLinux(hostnet.Config{Bridge: "bgbench0", Subnet: netip.MustParsePrefix("10.91.0.0/24"), PoolSize: pool},
			slog.New(slog.DiscardHandler))
		must(t, l.EnsureBridge(ctx))
		var ds []time.Duration
		for i := 0; i < n; i++ {
			time.Sleep(20 * time.Millisecond) // let the pool refill
			start := time.Now()
			must(t, l.CreateTAP(ctx, "bgtbench"))
			ds = append(ds, time.Since(start))
			must(t, l.DeleteTAP(ctx, "bgtbench"))
		}
		must(t, l.Teardown(ctx))
		l.Close()
		if pool < 0 {
			fresh = median(ds)
		} else {
			pooled = median(ds)
		}
	}
	return fresh, pooled
}

// benchDNS asks banger's DNS for name from 8 clients in the test
// namespace, for at most 5 s or 200000 answers.
func benchDNS(t *testing.T, e *env, name string) (qps float64, p50, p99 time.Duration, answered int64) {
	const workers, maxAnswers, maxTime = 8, 200000, 5 * time.Second
	conns := make([]net.Conn, workers)
	inNetns(t, e.ns, func() error {
		for i := range conns {
			c, err := net.Dial("udp4", "10.77.0.1:42069")
			if err != nil {
				return err
			}
			conns[i] = c
		}
		return nil
	})
	var count, failed atomic.Int64
	var mu sync.Mutex
	var lat []time.Duration
	var wg sync.WaitGroup
	start := time.Now()
	deadline := start.Add(maxTime)
	for i, c := range conns {
		wg.Add(1)
		go func() {
			defer wg.Done()
			defer c.Close()
			q := new(dns.Msg)
			q.SetQuestion(name, dns.TypeA)
			buf := make([]byte, 512)
			var mine []time.Duration
			for id := uint16(i * 8000); time.Now().Before(deadline) && count.Load() < maxAnswers; id++ {
				q.Id = id
				b, _ := q.Pack()
				t0 := time.Now()
				c.SetDeadline(t0.Add(time.Second))
				if _, err := c.Write(b); err != nil {
					failed.Add(1)
					continue
				}
				n, err := c.Read(buf)
				r := new(dns.Msg)
				if err != nil || r.Unpack(buf[:n]) != nil || r.Id != id || len(r.Answer) != 1 {
					failed.Add(1)
					continue
				}
				mine = append(mine, time.Since(t0))
				count.Add(1)
			}
			mu.Lock()
			lat = append(lat, mine...)
			mu.Unlock()
		}()
	}
	wg.Wait()
	elapsed := time.Since(start)
	if failed.Load() > 0 {
		t.Logf("dns bench: %d queries failed or timed out", failed.Load())
	}
	if len(lat) == 0 {
		t.Fatal("dns bench: no answers")
	}
	sort.Slice(lat, func(i, j int) bool { return lat[i] < lat[j] })
	return float64(count.Load()) / elapsed.Seconds(), lat[len(lat)/2], lat[len(lat)*99/100], count.Load()
}
