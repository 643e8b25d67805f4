package e2e

import (
	"fmt"
	"runtime"
	"strconv"
	"strings"
	"testing"
	"time"
)

// TestBenchNetPolicy measures issue 16's paths with a real guest: TCP
// throughput and time to first byte through a `vm forward` against the
// guest's address directly (goal: ≥ 0.8× the throughput), the time from a
// guest server starting to its auto-forward answering, and what a policy
// change on a running VM costs (`vm set --net`, CLI to rules applied).
// Only from `make bench` (BANGER_BENCH=1); reported, never asserted.
func TestBenchNetPolicy(t *testing.T) {
	rounds := benchRounds(t)
	e := newEnv(t)
	newUpstream(t, e)
	const mib = 64
	e.must("vm", "create", "--name", "nb", "-p", "18300:8300")
	var ip string
	for _, v := range e.vmList() {
		ip = fmt.Sprint(v["ip"])
	}
	// A guest server sending mib MiB per connection (perl is in every
	// Debian image).
	e.must("vm", "exec", "nb", "--", "sh", "-c", fmt.Sprintf(
		`setsid -f perl -MIO::Socket::INET -e '$SIG{PIPE}="IGNORE"; $s=IO::Socket::INET->new(LocalPort=>8300,Listen=>16,ReuseAddr=>1) or die; `+
			`$b="\0" x (1<<20); while($c=$s->accept){ while(<$c>){ last if /^\r?$/ } print $c "HTTP/1.0 200 OK\r\n\r\n"; print $c $b for 1..%d; close $c }' >/dev/null 2>&1; `+
			waitListen(8300), mib))

	// curl's speed (bytes/s) and time to first byte (s) for url.
	get := func(url string) (float64, float64) {
		out, err := e.inNS("curl", "-s", "-o", "/dev/null", "--max-time", "120", "-w", "%{speed_download} %{time_starttransfer}", url)
		f := strings.Fields(out)
		if err != nil || len(f) != 2 {
			t.Fatalf("curl %s: %v %q", url, err, out)
		}
		bps, _ := strconv.ParseFloat(f[0], 64)
		ttfb, _ := strconv.ParseFloat(f[1], 64)
		return bps, ttfb
	}
	var direct, fwd, dTTFB, fTTFB []time.Duration // throughput kept as ns per MiB
	for range rounds {
		for _, c := range []struct {
			url       string
			tput, lat *[]time.Duration
		}{{"http://" + ip + ":8300/", &direct, &dTTFB}, {"http://127.0.0.1:18300/", &fwd, &fTTFB}} {
			bps, ttfb := get(c.url)
			*c.tput = append(*c.tput, time.Duration(float64(time.Second)*(1<<20)/bps))
			*c.lat = append(*c.lat, time.Duration(ttfb*float64(time.Second)))
		}
	}
	mibps := func(perMiB time.Duration) float64 { return float64(time.Second) / float64(perMiB) }
	dMed, fMed := mibps(median(direct)), mibps(median(fwd))

	// Auto-forward: from the guest server listening (vm exec returns once
	// it accepts a connection inside the guest) to the host port answering.
	e.must("vm", "forward", "nb", "--auto")
	var autoT []time.Duration
	for i := range rounds {
		port := 18310 + i
		e.must("vm", "exec", "nb", "--", "sh", "-c", fmt.Sprintf(
			`setsid -f perl -MIO::Socket::INET -e '$SIG{PIPE}="IGNORE"; $s=IO::Socket::INET->new(LocalPort=>%d,Listen=>4,ReuseAddr=>1) or die; `+
				`while($c=$s->accept){ print $c "HTTP/1.0 200 OK\r\n\r\nok\n"; close $c }' >/dev/null 2>&1; `+
				waitListen(port), port))
		start := time.Now()
		for time.Since(start) < 30*time.Second {
			if out, _ := e.inNS("curl", "-s", "--max-time", "1", fmt.Sprintf("http://127.0.0.1:%d/", port)); strings.TrimSpace(out) == "ok" {
				break
			}
			time.Sleep(20 * time.Millisecond)
		}
		autoT = append(autoT, time.Since(start))
	}

	// A policy change on the running VM, CLI round trip included.
	var setT []time.Duration
	for i := range rounds * 2 {
		mode := []string{"isolated", "nat"}[i%2]
		start := time.Now()
		e.must("vm", "set", "nb", "--net", mode)
		setT = append(setT, time.Since(start))
	}
	e.must("vm", "delete", "nb")

	ms := func(d time.Duration) string { return fmt.Sprintf("%.1f ms", float64(d.Microseconds())/1000) }
	report := fmt.Sprintf(`## Network policy and port forwarding

Written by `+"`make bench`"+` on %s. Machine: %d cores; one guest under QEMU
(TCG), all inside network namespaces the benchmark creates. Medians of %d.

| what | value |
|---|---|
| TCP throughput, host → guest address directly (%d MiB per transfer) | %.1f MiB/s |
| TCP throughput through `+"`vm forward`"+` (127.0.0.1 → bangerd → guest) | %.1f MiB/s (**%.2f×** direct; goal ≥ 0.8×) |
| time to first byte, directly / through the forward | %s / %s |
| guest server listening → its auto-forward answering on 127.0.0.1 (poll every 500 ms) | %s |
| `+"`vm set --net`"+` on a running VM (CLI → daemon → rules applied in one transaction) | %s |

The guest's TCG CPU is the bottleneck of both transfers; the forward adds
one splice relay in bangerd. On a shared, loaded machine the numbers vary by
tens of percent between runs.
`, time.Now().UTC().Format("2006-01-02 15:04 UTC"), runtime.NumCPU(), rounds,
		mib, dMed, fMed, fMed/dMed, ms(median(dTTFB)), ms(median(fTTFB)), ms(median(autoT)), ms(median(setT)))
	writeBenchSection(t, "netpolicy", report)
}

// waitListen is a guest shell snippet that returns once something
// accepts connections on 127.0.0.1:port (perl starts slowly under TCG).
func waitListen(port int) string {
	return fmt.Sprintf(`for i in $(seq 150); do perl -MIO::Socket::INET -e 'exit !IO::Socket::INET->new("127.0.0.1:%d")' && exit 0; sleep 0.2; done; exit 1`, port)
}
