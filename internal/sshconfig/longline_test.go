package sshconfig

import (
	"bytes"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// A line longer than bufio.Scanner's 64 KiB limit before banger's region
// once hid the region: --install added a second one, --uninstall removed
// only one.
func TestRegionAfterALongLineIsFound(t *testing.T) {
	p := filepath.Join(t.TempDir(), "config")
	long := "# " + strings.Repeat("x", 100<<10) + "\n"
	user := "Host a\n" + long + "Host b\n    User me\n"
	writeFile(t, p, user)
	if _, err := Install(p, target); err != nil {
		t.Fatal(err)
	}
	// Move the region below the long line, as a user editing by hand might.
	installed := readFile(t, p)
	moved := strings.TrimPrefix(installed, Region(target))
	moved = moved[:len("Host a\n")+len(long)] + Region(target) + moved[len("Host a\n")+len(long):]
	writeFile(t, p, moved)

	if ok, err := Installed(p); err != nil || !ok {
		t.Fatalf("Installed = %v %v, want true (region after a 100 KiB line)", ok, err)
	}
	if changed, err := Install(p, target); err != nil || changed {
		t.Fatalf("Install again = %v %v, want unchanged", changed, err)
	}
	if n := strings.Count(readFile(t, p), BeginMarker); n != 1 {
		t.Fatalf("%d regions after a second install, want 1", n)
	}
	if changed, err := Uninstall(p); err != nil || !changed {
		t.Fatalf("Uninstall = %v %v", changed, err)
	}
	if got := readFile(t, p); got != user {
		t.Fatalf("uninstall left %d bytes with %d markers, want the user's %d bytes",
			len(got), strings.Count(got, BeginMarker), len(user))
	}
}

// checkEditor asserts what every edit of any file must keep: install is
// idempotent, touches nothing outside the region, and uninstall after
// install gives back the file without a region; a malformed region makes
// every edit refuse and change nothing.
func checkEditor(t *testing.T, orig []byte) {
	p := filepath.Join(t.TempDir(), "config")
	if err := os.WriteFile(p, orig, 0o600); err != nil {
		t.Fatal(err)
	}
	start, end, had, ferr := find(p, orig)
	if ferr != nil {
		if !errors.Is(ferr, ErrMalformed) {
			t.Fatalf("find: %v", ferr)
		}
		if _, err := Install(p, target); !errors.Is(err, ErrMalformed) {
			t.Fatalf("Install on a malformed file: %v, want ErrMalformed", err)
		}
		if _, err := Uninstall(p); !errors.Is(err, ErrMalformed) {
			t.Fatalf("Uninstall on a malformed file: %v, want ErrMalformed", err)
		}
		if got, _ := os.ReadFile(p); !bytes.Equal(got, orig) {
			t.Fatal("a refused edit changed the file")
		}
		return
	}
	outside := orig
	if had {
		outside = append(append([]byte{}, orig[:start]...), orig[end:]...)
	}
	if _, err := Install(p, target); err != nil {
		t.Fatalf("Install: %v", err)
	}
	once, _ := os.ReadFile(p)
	if changed, err := Install(p, target); err != nil || changed {
		t.Fatalf("second Install = %v %v, want no change", changed, err)
	}
	if twice, _ := os.ReadFile(p); !bytes.Equal(once, twice) {
		t.Fatal("install twice differs from install once")
	}
	s, e, ok, err := find(p, once)
	if err != nil || !ok || string(once[s:e]) != Region(target) {
		t.Fatalf("after Install: region ok=%v err=%v", ok, err)
	}
	if rest := append(append([]byte{}, once[:s]...), once[e:]...); !bytes.Equal(rest, outside) {
		t.Fatal("Install changed bytes outside the region")
	}
	if _, err := Uninstall(p); err != nil {
		t.Fatalf("Uninstall: %v", err)
	}
	after, _ := os.ReadFile(p)
	if !bytes.Equal(after, outside) {
		t.Fatalf("uninstall after install: %q, want %q", after, outside)
	}
	if !had && !bytes.Equal(after, orig) {
		t.Fatal("uninstall after install did not restore the original bytes")
	}
}

// FuzzEditor runs the install/uninstall invariants on arbitrary files. Its
// seed corpus (testdata/fuzz/FuzzEditor) runs with plain `go test`.
func FuzzEditor(f *testing.F) {
	f.Add([]byte(foreign))
	f.Add([]byte(Region(target) + "Host x\n"))
	f.Add([]byte("Host a\n" + Region("/other") + "Host b"))
	f.Add([]byte(EndMarker + "\n" + BeginMarker + "\n"))
	f.Add([]byte(strings.Repeat("y", 70<<10) + "\n" + Region(target)))
	f.Fuzz(func(t *testing.T, b []byte) { checkEditor(t, b) })
}
