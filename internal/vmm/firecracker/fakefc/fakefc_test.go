package fakefc_test

import (
	"bytes"
	"context"
	"net"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/banger-dev/banger/internal/vmm/firecracker"
	"github.com/banger-dev/banger/internal/vmm/firecracker/fakefc"
)

// syncBuffer is the fake's stdout (the guest console).
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// serve runs the fake in-process (it serves until the test binary exits;
// SendCtrlAltDel is told not to exit) and returns a client and the console.
func serve(t *testing.T, flags ...string) (*firecracker.Client, *syncBuffer, string) {
	t.Helper()
	dir := t.TempDir()
	sock := filepath.Join(dir, "api.sock")
	console := &syncBuffer{}
	args := append([]string{"--api-sock", sock, "--fake-ignore-ctrlaltdel"}, flags...)
	go fakefc.Main(args, console, os.Stderr)
	c := firecracker.NewClient(sock, nil)
	t.Cleanup(c.Close)
	for deadline := time.Now().Add(5 * time.Second); ; time.Sleep(5 * time.Millisecond) {
		if _, err := c.Info(context.Background()); err == nil {
			break
		} else if time.Now().After(deadline) {
			t.Fatalf("fake did not come up: %v", err)
		}
	}
	return c, console, dir
}

func file(t *testing.T, dir, name, content string) string {
	p := filepath.Join(dir, name)
	if err := os.WriteFile(p, []byte(content), 0o644); err != nil {
		t.Fatal(err)
	}
	return p
}

func wantFault(t *testing.T, err error, substr string) {
	t.Helper()
	e, ok := firecracker.IsAPIError(err)
	if !ok || e.Status != 400 || !strings.Contains(e.FaultMessage, substr) {
		t.Fatalf("got %v, want a 400 mentioning %q", err, substr)
	}
}

func TestFakePreBootRules(t *testing.T) {
	c, _, dir := serve(t)
	ctx := context.Background()
	disk := file(t, dir, "d.ext4", "x")
	wantFault(t, c.Action(ctx, firecracker.ActionInstanceStart), "without kernel configuration")
	wantFault(t, c.Action(ctx, firecracker.ActionSendCtrlAltDel), "before starting")
	wantFault(t, c.PutDrive(ctx, firecracker.Drive{DriveID: "a-b", PathOnHost: disk}), "Invalid ID")
	wantFault(t, c.PutDrive(ctx, firecracker.Drive{DriveID: "a", PathOnHost: filepath.Join(dir, "none")}), "cannot open")
	wantFault(t, c.PutVsock(ctx, firecracker.Vsock{GuestCID: 2, UDSPath: filepath.Join(dir, "v")}), "CID")
	wantFault(t, c.PutBootSource(ctx, firecracker.BootSource{KernelImagePath: filepath.Join(dir, "none")}), "kernel file")
	on := true
	// The client was never told the version, so it does not gate: the
	// fake, as 1.16.1, must refuse the 1.17 field itself.
	wantFault(t, c.PutMetrics(ctx, firecracker.Metrics{MetricsPath: filepath.Join(dir, "m"), EmitID: &on}), "unknown field")
	if err := c.PutDrive(ctx, firecracker.Drive{DriveID: "a", PathOnHost: disk, IsRootDevice: true}); err != nil {
		t.Fatal(err)
	}
	wantFault(t, c.PutDrive(ctx, firecracker.Drive{DriveID: "b", PathOnHost: disk, IsRootDevice: true}), "root block device already exists")
	if err := c.PutLogger(ctx, firecracker.Logger{LogPath: filepath.Join(dir, "log")}); err != nil {
		t.Fatal(err)
	}
	wantFault(t, c.PutLogger(ctx, firecracker.Logger{LogPath: filepath.Join(dir, "log")}), "Reinitialization")
}

func TestFakeRejectsNonELFBefore117(t *testing.T) {
	c, _, dir := serve(t)
	ctx := context.Background()
	bz := make([]byte, 0x300)
	copy(bz[0x202:], "HdrS")
	if err := c.PutBootSource(ctx, firecracker.BootSource{KernelImagePath: file(t, dir, "bz", string(bz))}); err != nil {
		t.Fatal(err)
	}
	wantFault(t, c.Action(ctx, firecracker.ActionInstanceStart), "ELF")
}

func TestFakeRunningRules(t *testing.T) {
	c, console, dir := serve(t)
	ctx := context.Background()
	if info, err := c.Info(ctx); err != nil || info.State != "Not started" || info.AppName != "Firecracker" {
		t.Fatalf("info %+v %v", info, err)
	}
	disk := file(t, dir, "d.ext4", "x")
	if err := c.PutBootSource(ctx, firecracker.BootSource{KernelImagePath: file(t, dir, "k", "\x7fELF"), BootArgs: "console=ttyS0"}); err != nil {
		t.Fatal(err)
	}
	if err := c.PutDrive(ctx, firecracker.Drive{DriveID: "rootfs", PathOnHost: disk, IsRootDevice: true, IsReadOnly: true}); err != nil {
		t.Fatal(err)
	}
	vsock := filepath.Join(dir, "v.sock")
	if err := c.PutVsock(ctx, firecracker.Vsock{GuestCID: 3, UDSPath: vsock}); err != nil {
		t.Fatal(err)
	}
	// Before boot no guest listens: Firecracker closes the connection.
	if got := connect(t, vsock); got != "" {
		t.Fatalf("pre-boot CONNECT answered %q", got)
	}
	if err := c.Action(ctx, firecracker.ActionInstanceStart); err != nil {
		t.Fatal(err)
	}
	if info, _ := c.Info(ctx); info.State != "Running" {
		t.Fatalf("state %q", info.State)
	}
	wantFault(t, c.PutMachineConfig(ctx, firecracker.MachineConfig{VCPUCount: 1, MemSizeMiB: 128}), "after starting")
	wantFault(t, c.Action(ctx, firecracker.ActionInstanceStart), "after starting")
	if err := c.Action(ctx, firecracker.ActionSendCtrlAltDel); err != nil {
		t.Fatal(err)
	}
	if got := connect(t, vsock); !strings.HasPrefix(got, "OK ") {
		t.Fatalf("CONNECT after boot: %q", got)
	}
	if !strings.Contains(console.String(), "Command line: console=ttyS0 pci=off root=/dev/vda ro") {
		t.Fatalf("console %q", console.String())
	}
}

// connect sends a hybrid-vsock CONNECT and returns the answer ("" on EOF).
func connect(t *testing.T, uds string) string {
	t.Helper()
	conn, err := net.Dial("unix", uds)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	conn.SetDeadline(time.Now().Add(2 * time.Second))
	conn.Write([]byte("connect 1024\n"))
	buf := make([]byte, 64)
	n, _ := conn.Read(buf)
	return string(buf[:n])
}

func TestFakeRecordsRequests(t *testing.T) {
	rec := filepath.Join(t.TempDir(), "r.jsonl")
	c, _, _ := serve(t, "--fake-record", rec, "--fake-fail", "/machine-config")
	ctx := context.Background()
	c.Version(ctx)
	wantFault(t, c.PutMachineConfig(ctx, firecracker.MachineConfig{VCPUCount: 1, MemSizeMiB: 128}), "injected")
	reqs, err := fakefc.ReadRecord(rec)
	// serve's readiness probe (GET /) comes first.
	if err != nil || len(reqs) != 3 || reqs[1].Path != "/version" || reqs[2].Path != "/machine-config" ||
		string(reqs[2].Body) != `{"vcpu_count":1,"mem_size_mib":128}` {
		t.Fatalf("record %+v %v", reqs, err)
	}
}
