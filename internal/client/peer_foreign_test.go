package client

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"
)

const foreignHelperEnv = "BANGER_TEST_FOREIGN_LISTENER"

func TestMain(m *testing.M) {
	if os.Getenv(foreignHelperEnv) == "1" {
		os.Exit(serveForeign())
	}
	os.Exit(m.Run())
}

// serveForeign is the helper process: running as another user, it
// listens on the socket inherited as fd 3 (the peer credentials a client
// sees are the listener's), reads whatever clients send, and reports the
// byte count when its stdin closes.
func serveForeign() int {
	if err := syscall.Listen(3, 8); err != nil {
		fmt.Println("listen:", err)
		return 1
	}
	l, err := net.FileListener(os.NewFile(3, "sock"))
	if err != nil {
		fmt.Println("listener:", err)
		return 1
	}
	got := make(chan int64, 64)
	go func() {
		for {
			c, err := l.Accept()
			if err != nil {
				return
			}
			go func() {
				c.SetReadDeadline(time.Now().Add(2 * time.Second))
				n, _ := io.Copy(io.Discard, c)
				got <- n
			}()
		}
	}()
	io.Copy(io.Discard, os.Stdin)
	time.Sleep(2500 * time.Millisecond) // let open connections time out
	var total int64
	for {
		select {
		case n := <-got:
			total += n
		default:
			fmt.Println("received", total)
			return 0
		}
	}
}

// A socket in our runtime dir served by a process of another user (root
// placed it there, or the directory was ours too late) is refused after
// SO_PEERCRED, before the request is written.
func TestClientRefusesAForeignPeer(t *testing.T) {
	if os.Getuid() != 0 {
		t.Skip("needs root to run the listener as another user")
	}
	p := runtimeDir(t)
	fd, err := syscall.Socket(syscall.AF_UNIX, syscall.SOCK_STREAM|syscall.SOCK_CLOEXEC, 0)
	if err != nil {
		t.Fatal(err)
	}
	sock := os.NewFile(uintptr(fd), "sock")
	defer sock.Close()
	if err := syscall.Bind(fd, &syscall.SockaddrUnix{Name: p.Socket()}); err != nil {
		t.Fatal(err)
	}
	// The helper must be executable by nobody: a copy of this test binary.
	dir, err := os.MkdirTemp("/tmp", "bgf")
	if err != nil {
		t.Fatal(err)
	}
	defer os.RemoveAll(dir)
	os.Chmod(dir, 0o755)
	self, _ := os.Executable()
	bin := filepath.Join(dir, "helper")
	if b, err := os.ReadFile(self); err != nil || os.WriteFile(bin, b, 0o755) != nil {
		t.Fatalf("copy test binary: %v", err)
	}
	cmd := exec.Command(bin)
	cmd.Env = append(os.Environ(), foreignHelperEnv+"=1")
	cmd.ExtraFiles = []*os.File{sock}
	cmd.SysProcAttr = &syscall.SysProcAttr{Credential: &syscall.Credential{Uid: 65534, Gid: 65534}}
	stdin, _ := cmd.StdinPipe()
	stdout, _ := cmd.StdoutPipe()
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	defer cmd.Process.Kill()
	// Wait until the helper listens (a connect before is refused).
	deadline := time.Now().Add(10 * time.Second)
	for {
		c, err := net.Dial("unix", p.Socket())
		if err == nil {
			c.Close()
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("helper never listened: %v", err)
		}
		time.Sleep(20 * time.Millisecond)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	_, err = (&Client{Paths: p}).Status(ctx)
	if !errors.Is(err, ErrForeignPeer) || !strings.Contains(err.Error(), "uid 65534") {
		t.Fatalf("Status against a foreign peer = %v, want ErrForeignPeer naming uid 65534", err)
	}
	stdin.Close()
	line, _ := bufio.NewReader(stdout).ReadString('\n')
	cmd.Wait()
	if strings.TrimSpace(line) != "received 0" {
		t.Fatalf("helper: %q, want nothing received", line)
	}
}
