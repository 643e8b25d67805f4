package proto

import (
	"bytes"
	"errors"
	"reflect"
	"testing"
)

func TestConfigDriveRoundTrip(t *testing.T) {
	cfg := GuestConfig{
		Version:  ConfigVersion,
		Hostname: "dev",
		Disks: []GuestDisk{
			{Role: RoleBase},
			{Role: RoleOverlay, UUID: "0b5e7c1a-9f7e-4a53-9d51-0f6c0a3b9d11"},
			{Role: RoleWork, UUID: "7d2e3f40-1111-4222-8333-944455556666"},
		},
		Net: &GuestNet{
			MAC:     "52:54:00:12:34:56",
			Address: "172.30.0.2/24",
			Gateway: "172.30.0.1",
			DNS:     []string{"172.30.0.1"},
		},
		AuthorizedKeys: []string{"ssh-ed25519 AAAA test"},
		SSHHostKeys:    map[string]string{"ssh_host_ed25519_key": "PRIVATE", "ssh_host_ed25519_key.pub": "PUB"},
		Files:          []GuestFile{{Path: "/root/.gitconfig", Mode: 0o644, Content: []byte("[user]\n")}},
		Init:           "/sbin/init",
	}
	raw, err := EncodeConfigDrive(cfg)
	if err != nil {
		t.Fatal(err)
	}
	if len(raw)%ConfigDriveSector != 0 {
		t.Fatalf("drive is %d bytes, not a multiple of %d", len(raw), ConfigDriveSector)
	}
	got, err := DecodeConfigDrive(bytes.NewReader(raw))
	if err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(got, cfg) {
		t.Fatalf("round trip mismatch:\n got %+v\nwant %+v", got, cfg)
	}
}

func TestDecodeConfigDriveRejects(t *testing.T) {
	good, err := EncodeConfigDrive(GuestConfig{Version: ConfigVersion, Hostname: "x"})
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name     string
		data     []byte
		notDrive bool
	}{
		{"empty", nil, true},
		{"ext4 zeros", make([]byte, 4096), true},
		{"bad length", []byte("BANGER-CONFIG-V1\nabc\n{}"), false},
		{"truncated body", good[:len(configMagic)+5], false},
		{"bad json", []byte("BANGER-CONFIG-V1\n2\n{x"), false},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			_, err := DecodeConfigDrive(bytes.NewReader(tc.data))
			if err == nil {
				t.Fatal("decoded garbage without error")
			}
			if got := errors.Is(err, ErrNotConfigDrive); got != tc.notDrive {
				t.Fatalf("ErrNotConfigDrive = %v, want %v (err %v)", got, tc.notDrive, err)
			}
		})
	}
}
