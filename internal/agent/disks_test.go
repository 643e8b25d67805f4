package agent

import (
	"bytes"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/banger-dev/banger/internal/agent/proto"
)

func mkfsExt4(t *testing.T, path, uuid string) {
	t.Helper()
	out, err := exec.Command("mkfs.ext4", "-q", "-F", "-U", uuid, path, "4M").CombinedOutput()
	if err != nil {
		t.Fatalf("mkfs.ext4: %v\n%s", err, out)
	}
}

func TestExt4UUID(t *testing.T) {
	dir := t.TempDir()
	img := filepath.Join(dir, "fs.ext4")
	const uuid = "3f0c9a4e-5b7d-4c1e-8a2b-9d6e0f1a2b3c"
	mkfsExt4(t, img, uuid)
	f, err := os.Open(img)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	got, err := ext4UUID(f)
	if err != nil || got != uuid {
		t.Fatalf("uuid %q err %v, want %s", got, err, uuid)
	}
	for name, data := range map[string][]byte{
		"zeros": make([]byte, 8192),
		"short": []byte("tiny"),
	} {
		if _, err := ext4UUID(bytes.NewReader(data)); !errors.Is(err, errNotExt4) {
			t.Errorf("%s: err = %v, want errNotExt4", name, err)
		}
	}
}

func TestMatchDisks(t *testing.T) {
	const ov, wk = "11111111-1111-1111-1111-111111111111", "22222222-2222-2222-2222-222222222222"
	want := []proto.GuestDisk{{Role: proto.RoleBase}, {Role: proto.RoleOverlay, UUID: ov}, {Role: proto.RoleWork, UUID: wk}}
	base := probedDisk{Dev: "/dev/vda", UUID: "aaaaaaaa-0000-0000-0000-000000000000"}
	overlay := probedDisk{Dev: "/dev/vdb", UUID: ov}
	work := probedDisk{Dev: "/dev/vdc", UUID: strings.ToUpper(wk)}
	config := probedDisk{Dev: "/dev/vdd", Config: true}
	extra := probedDisk{Dev: "/dev/vde", UUID: "bbbbbbbb-0000-0000-0000-000000000000"}
	const mods = "33333333-3333-4333-8333-333333333333"
	modules := probedDisk{Dev: "/dev/vdf", UUID: mods}
	withModules := append(append([]proto.GuestDisk{}, want...), proto.GuestDisk{Role: proto.RoleModules, UUID: mods})
	tests := []struct {
		name    string
		want    []proto.GuestDisk
		have    []probedDisk
		roles   map[string]string
		wantErr string
	}{
		{"all present, any order", want, []probedDisk{config, work, base, overlay},
			map[string]string{"base": "/dev/vda", "overlay": "/dev/vdb", "work": "/dev/vdc"}, ""},
		{"work disk not there yet", want, []probedDisk{base, overlay, config}, nil, "no disk for role work"},
		{"only uuid disks so far", want, []probedDisk{overlay, work}, nil, "no disk for role base"},
		{"an extra ext4 disk", want, []probedDisk{base, overlay, work, extra}, nil, "several disks for role base"},
		{"duplicate uuid", want, []probedDisk{base, overlay, work, {Dev: "/dev/vdf", UUID: ov}}, nil, "several disks for role overlay"},
		{"base only", []proto.GuestDisk{{Role: proto.RoleBase}}, []probedDisk{config, base},
			map[string]string{"base": "/dev/vda"}, ""},
		// The kernel's module disk is claimed by its UUID, so the base
		// image is still the one ext4 disk left over.
		{"with the modules disk", withModules, []probedDisk{modules, config, work, base, overlay},
			map[string]string{"base": "/dev/vda", "overlay": "/dev/vdb", "work": "/dev/vdc", "modules": "/dev/vdf"}, ""},
		{"modules disk not there yet", withModules, []probedDisk{config, work, base, overlay}, nil, "no disk for role modules"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			roles, err := matchDisks(tc.want, tc.have)
			if tc.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
					t.Fatalf("err = %v, want %q", err, tc.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			for role, dev := range tc.roles {
				if roles[role] != dev {
					t.Errorf("role %s = %q, want %q", role, roles[role], dev)
				}
			}
			if len(roles) != len(tc.roles) {
				t.Errorf("roles %v, want %v", roles, tc.roles)
			}
		})
	}
}
