package e2e

import (
	"fmt"
	"os"
	"path/filepath"
	"runtime"
	"slices"
	"strings"
	"testing"
	"time"
)

// TestBenchRemote measures what the SSH hop costs: `vm ls` and `vm run
// --rm -- true` with the daemon local (the CLI beside it, in its
// namespace) and through --host from the client namespace of the remote
// rig, with OpenSSH's master connection reused (banger's default) and
// with a new SSH connection per call. Only from `make bench`
// (BANGER_BENCH=1); reported, never asserted.
func TestBenchRemote(t *testing.T) {
	rounds := benchRounds(t)
	const lsRounds = 15
	g := newRemoteRig(t)
	e, c := g.remote, g.client
	// The same client without reuse: an ssh on PATH whose options come
	// first, and OpenSSH keeps the first value it reads.
	nomux := filepath.Join(g.dir, "nomux")
	must(t, os.MkdirAll(nomux, 0o755))
	must(t, os.WriteFile(filepath.Join(nomux, "ssh"), []byte("#!/bin/sh\nexec "+filepath.Join(g.dir, "cbin", "ssh")+
		" -o ControlMaster=no -o ControlPath=none \"$@\"\n"), 0o755))
	cn := &env{t: t, bin: c.bin, ns: c.ns, home: c.home}
	for _, v := range c.vars {
		if p, ok := strings.CutPrefix(v, "PATH="); ok {
			v = "PATH=" + nomux + ":" + p
		}
		cn.vars = append(cn.vars, v)
	}

	timed := func(x *env, args ...string) time.Duration {
		t.Helper()
		start := time.Now()
		x.must(args...)
		return time.Since(start)
	}
	e.must("daemon", "start")
	first := timed(c, "--host", "ssh://box", "vm", "ls") // sets up the master connection
	var ls [3][]time.Duration
	for i := 0; i < lsRounds; i++ {
		ls[0] = append(ls[0], timed(e, "vm", "ls"))
		ls[1] = append(ls[1], timed(c, "--host", "ssh://box", "vm", "ls"))
		ls[2] = append(ls[2], timed(cn, "--host", "ssh://box", "vm", "ls"))
	}
	e.must("vm", "create", "--name", "bench")
	var execs [3][]time.Duration
	for i := 0; i < lsRounds; i++ {
		execs[0] = append(execs[0], timed(e, "vm", "exec", "bench", "--", "true"))
		execs[1] = append(execs[1], timed(c, "--host", "ssh://box", "vm", "exec", "bench", "--", "true"))
		execs[2] = append(execs[2], timed(cn, "--host", "ssh://box", "vm", "exec", "bench", "--", "true"))
	}
	e.must("vm", "delete", "bench")
	var runs [3][]time.Duration
	for i := 0; i < rounds; i++ {
		runs[0] = append(runs[0], timed(e, "vm", "run", "--rm", "--", "true"))
		runs[1] = append(runs[1], timed(c, "--host", "ssh://box", "vm", "run", "--rm", "--", "true"))
		runs[2] = append(runs[2], timed(cn, "--host", "ssh://box", "vm", "run", "--rm", "--", "true"))
	}
	e.assertClean()

	ms := func(d time.Duration) string { return fmt.Sprintf("%.0f ms", float64(d.Microseconds())/1000) }
	fastest := func(ds []time.Duration) time.Duration { return slices.Min(ds) }
	diff := func(a, b []time.Duration) string {
		d := median(a) - median(b)
		return fmt.Sprintf("%+.0f ms", float64(d.Microseconds())/1000)
	}
	report := fmt.Sprintf(`## Remote hosts (`+"`--host ssh://…`"+`)

Written by `+"`make bench`"+` on %s. Machine: %d cores. The remote host is a
network namespace with a real sshd (OpenSSH, ed25519 keys) and its own
bangerd; the client is in another namespace joined by a veth pair, so the
network adds next to nothing and what is measured is SSH itself: the
handshake, `+"`banger daemon dial-stdio`"+` starting on the remote side, and
the relay. Wall-clock time of the whole CLI process; medians.

| command | local | --host, master reused (default) | --host, new SSH connection each call |
|---|---|---|---|
| `+"`vm ls`"+` (median of %d) | %s | %s (%s) | %s (%s) |
| `+"`vm exec VM -- true`"+`, a running VM (median of %d) | %s | %s (%s) | %s (%s) |
| `+"`vm run --rm -- true`"+` (median of %d) | %s | %s (%s) | %s (%s) |
| `+"`vm run --rm -- true`"+` (fastest of %d) | %s | %s | %s |

`+"`vm run`"+` boots a guest under TCG on 2 cores shared with other work, so
its runs vary by seconds and the difference of its medians is mostly that
noise; `+"`vm ls`"+` and `+"`vm exec`"+` show the hop's own cost per command.

The first `+"`--host`"+` call, which also starts the OpenSSH master
connection (ControlMaster=auto, ControlPersist=10m, its socket in the
client's runtime directory): %s. Every later call opens a session on that
master instead of a new SSH connection. Each RPC is one session (one
`+"`dial-stdio`"+` process on the remote side), so a command pays the
per-session cost once per call it makes.
`, time.Now().UTC().Format("2006-01-02 15:04 UTC"), runtime.NumCPU(),
		lsRounds, ms(median(ls[0])), ms(median(ls[1])), diff(ls[1], ls[0]), ms(median(ls[2])), diff(ls[2], ls[0]),
		lsRounds, ms(median(execs[0])), ms(median(execs[1])), diff(execs[1], execs[0]), ms(median(execs[2])), diff(execs[2], execs[0]),
		rounds, ms(median(runs[0])), ms(median(runs[1])), diff(runs[1], runs[0]), ms(median(runs[2])), diff(runs[2], runs[0]),
		rounds, ms(fastest(runs[0])), ms(fastest(runs[1])), ms(fastest(runs[2])),
		ms(first))
	writeBenchSection(t, "remote", report)
}
