package hostnet

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// fakeResolvectl stands in for resolvectl: it logs every call and keeps
// per-link dns/domain settings in files, as resolved keeps them per link.
const fakeResolvectl = `#!/bin/sh
echo "$*" >> "$RESOLVED_DIR/log"
case "$1" in
dns|domain)
  if [ $# -eq 3 ]; then echo "$3" > "$RESOLVED_DIR/$1"; else echo "Link 9 ($2): $(cat "$RESOLVED_DIR/$1" 2>/dev/null)"; fi ;;
revert) rm -f "$RESOLVED_DIR/dns" "$RESOLVED_DIR/domain" ;;
esac
`

func TestResolvedRouting(t *testing.T) {
	enterNetns(t)
	setForward(t, "0") // assertNothingLeft expects it off again
	ctx := context.Background()
	dir := t.TempDir()
	t.Setenv("RESOLVED_DIR", dir)
	bin := filepath.Join(dir, "resolvectl")
	must(t, os.WriteFile(bin, []byte(fakeResolvectl), 0o755))
	sock := filepath.Join(dir, "io.systemd.Resolve")
	must(t, os.WriteFile(sock, nil, 0o600))
	oldBin, oldSock, oldInit := resolvectlBin, resolvedSocket, initNetns
	t.Cleanup(func() { resolvectlBin, resolvedSocket, initNetns = oldBin, oldSock, oldInit })

	// In a namespace resolved does not manage, banger leaves it alone.
	resolvectlBin, resolvedSocket = bin, sock
	if ok, why := ResolvedStatus(); ok || !strings.Contains(why, "network namespace") {
		t.Fatalf("ResolvedStatus in a test namespace = %v %q", ok, why)
	}
	// Pretend this namespace is the init one.
	initNetns = "/proc/thread-self/ns/net"
	if ok, why := ResolvedStatus(); !ok {
		t.Fatalf("ResolvedStatus = %v %q", ok, why)
	}
	n := newTestNet(t, "10.77.0.0/24")
	must(t, n.EnsureBridge(ctx))
	must(t, n.EnsureBridge(ctx))
	log, _ := os.ReadFile(filepath.Join(dir, "log"))
	for _, want := range []string{"dns bgtest0 10.77.0.1:42069\n", "domain bgtest0 ~vm\n", "default-route bgtest0 false\n"} {
		if strings.Count(string(log), want) != 1 {
			t.Errorf("resolvectl calls lack exactly one %q:\n%s", want, log)
		}
	}
	st, err := n.Show(ctx)
	must(t, err)
	found := false
	for _, o := range st.Objects {
		found = found || o.Kind == "resolved" && strings.Contains(o.Detail, "10.77.0.1:42069")
	}
	if !found {
		t.Errorf("Show lacks the resolved routing: %v", st.Objects)
	}
	must(t, n.Teardown(ctx))
	log, _ = os.ReadFile(filepath.Join(dir, "log"))
	if !strings.Contains(string(log), "revert bgtest0\n") {
		t.Errorf("teardown did not revert:\n%s", log)
	}
	if _, err := os.Stat(filepath.Join(dir, "domain")); err == nil {
		t.Error("routing domain left")
	}
	assertNothingLeft(t)
}
