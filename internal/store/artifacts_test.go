package store

import (
	"context"
	"errors"
	"net/netip"
	"reflect"
	"strings"
	"sync"
	"testing"
)

// TestImageDeleteAndRaces: delete refuses while VMs use an image and names
// them; of concurrent registrations of one name exactly one wins; the
// issue-7 columns round-trip.
func TestImageDeleteAndRaces(t *testing.T) {
	s, _ := openTest(t)
	ctx := context.Background()
	im := Image{Name: "oci", Path: "/x/oci.ext4", SizeBytes: 1, Source: "oci r", Kernel: "k", Init: InitNone, HasSSHD: false, Digest: "sha256:ab", Ref: "r@sha256:ab"}
	if err := s.PutImage(ctx, im); err != nil {
		t.Fatal(err)
	}
	got, err := s.GetImage(ctx, "oci")
	if err != nil || got.Init != InitNone || got.HasSSHD || got.Kernel != "k" || got.Ref != im.Ref || got.Digest != im.Digest {
		t.Fatalf("round trip: %+v %v", got, err)
	}
	if err := s.PutKernel(ctx, Kernel{Name: "k", Dir: "/k", Release: "r", Source: "s", Digest: "sha256:cd"}); err != nil {
		t.Fatal(err)
	}
	for _, n := range []string{"vm-b", "vm-a"} {
		v := &VM{ID: n, Name: n, Image: "oci", Kernel: "k", VMM: "qemu", VCPU: 1, MemoryMiB: 1, DiskBytes: 1, MAC: "m", OverlayUUID: "o", WorkUUID: "w", State: StateStopped}
		if err := s.ReserveVM(ctx, v, netip.MustParsePrefix("10.0.0.0/24"), netip.MustParseAddr("10.0.0.1")); err != nil {
			t.Fatal(err)
		}
	}
	_, err = s.DeleteImage(ctx, "oci")
	var inUse *InUseError
	if !errors.As(err, &inUse) || len(inUse.VMs) != 2 || inUse.VMs[0] != "vm-a" {
		t.Fatalf("delete of a used image: %v", err)
	}
	if _, err := s.DeleteKernel(ctx, "k"); !errors.As(err, &inUse) {
		t.Fatalf("delete of a used kernel: %v", err)
	}
	for _, id := range []string{"vm-a", "vm-b"} {
		if err := s.DeleteVM(ctx, id); err != nil {
			t.Fatal(err)
		}
	}
	if err := s.PutImage(ctx, Image{Name: "alias", Path: im.Path, Source: "s"}); err != nil {
		t.Fatal(err)
	}
	if shared, err := s.DeleteImage(ctx, "oci"); err != nil || !shared {
		t.Errorf("delete with the file shared: shared=%v err=%v", shared, err)
	}
	if shared, err := s.DeleteImage(ctx, "alias"); err != nil || shared {
		t.Errorf("delete of the last user: shared=%v err=%v", shared, err)
	}
	if _, err := s.DeleteImage(ctx, "alias"); !errors.Is(err, ErrNotFound) {
		t.Errorf("delete twice: %v", err)
	}

	var wg sync.WaitGroup
	errs := make([]error, 8)
	for i := range errs {
		wg.Add(1)
		go func() {
			defer wg.Done()
			errs[i] = s.PutImage(ctx, Image{Name: "race", Path: "/p", Source: "s"})
		}()
	}
	wg.Wait()
	wins := 0
	for _, err := range errs {
		switch {
		case err == nil:
			wins++
		case !errors.Is(err, ErrConflict):
			t.Errorf("racing put: %v", err)
		}
	}
	if wins != 1 {
		t.Errorf("%d racing puts of one name succeeded, want 1", wins)
	}
}

// TestImageRuntime: an image's runtime config round-trips; an image
// without one reads back as nothing recorded (stored as an empty string).
func TestImageRuntime(t *testing.T) {
	s, _ := openTest(t)
	ctx := context.Background()
	rt := ImageRuntime{Env: []string{"PATH=/usr/local/go/bin:/usr/bin", "Q=a \"b\"=c"}, WorkingDir: "/go", Entrypoint: []string{"/entry"}, Cmd: []string{"go", "version"}}
	must(t, s.PutImage(ctx, Image{Name: "with", Path: "/w", Source: "oci r", Runtime: rt}))
	must(t, s.PutImage(ctx, Image{Name: "without", Path: "/wo", Source: "file f"}))
	got, err := s.GetImage(ctx, "with")
	if err != nil || !reflect.DeepEqual(got.Runtime, rt) {
		t.Fatalf("round trip: %+v %v", got.Runtime, err)
	}
	ims, err := s.ListImages(ctx)
	if err != nil || len(ims) != 2 || !reflect.DeepEqual(ims[0].Runtime, rt) || !ims[1].Runtime.IsZero() {
		t.Fatalf("ListImages: %+v %v", ims, err)
	}
	var raw string
	must(t, s.db.QueryRowContext(ctx, `SELECT runtime FROM images WHERE name = 'without'`).Scan(&raw))
	if raw != "" {
		t.Errorf("no runtime stored as %q, want ''", raw)
	}
	must(t, s.db.QueryRowContext(ctx, `SELECT runtime FROM images WHERE name = 'with'`).Scan(&raw))
	if !strings.Contains(raw, `"working_dir":"/go"`) {
		t.Errorf("runtime stored as %q", raw)
	}
}

func must(t *testing.T, err error) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
}
