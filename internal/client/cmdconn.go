package client

import (
	"bufio"
	"errors"
	"io"
	"net"
	"os"
	"os/exec"
	"strings"
	"sync"
	"syscall"
	"time"
)

// cmdConn is a net.Conn over a subprocess's stdin and stdout (the shape
// of docker's connhelper/commandconn): here `ssh HOST banger daemon
// dial-stdio`. The pipes are *os.File, so deadlines work and Close
// unblocks a pending Read.
type cmdConn struct {
	cmd    *exec.Cmd
	stdin  *os.File // our end of the child's stdin
	stdout *os.File // our end of the child's stdout
	r      *bufio.Reader
	// stderr is an unlinked temporary file, not a pipe: an OpenSSH
	// ControlPersist master forked by this ssh may keep it open for
	// minutes, and nothing here waits for its end.
	stderr *os.File

	exited  chan struct{}
	waitErr error  // set before exited closes
	errText string // stderr as it was at exit; set before exited closes
	once    sync.Once
}

// startCmdConn starts name with args, its stdin and stdout the
// connection. The child gets its own process group, so a Ctrl-C at the
// terminal reaches banger (which ends the call) and not ssh.
func startCmdConn(name string, args []string, stderrDir string) (*cmdConn, error) {
	inR, inW, err := os.Pipe()
	if err != nil {
		return nil, err
	}
	outR, outW, err := os.Pipe()
	if err != nil {
		inR.Close()
		inW.Close()
		return nil, err
	}
	errF, err := os.CreateTemp(stderrDir, ".ssh-stderr-*")
	if err != nil {
		for _, f := range []*os.File{inR, inW, outR, outW} {
			f.Close()
		}
		return nil, err
	}
	os.Remove(errF.Name())
	cmd := exec.Command(name, args...)
	cmd.Stdin, cmd.Stdout, cmd.Stderr = inR, outW, errF
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGTERM}
	err = cmd.Start()
	inR.Close()
	outW.Close()
	if err != nil {
		inW.Close()
		outR.Close()
		errF.Close()
		return nil, err
	}
	c := &cmdConn{cmd: cmd, stdin: inW, stdout: outR, r: bufio.NewReaderSize(outR, 64<<10), stderr: errF, exited: make(chan struct{})}
	go func() {
		c.waitErr = cmd.Wait()
		c.errText = c.readStderr()
		errF.Close()
		close(c.exited)
	}()
	return c, nil
}

func (c *cmdConn) Read(p []byte) (int, error)  { return c.r.Read(p) }
func (c *cmdConn) Write(p []byte) (int, error) { return c.stdin.Write(p) }

// CloseWrite ends the child's stdin (ssh then sends EOF to the remote
// command).
func (c *cmdConn) CloseWrite() error { return c.stdin.Close() }

// Close ends both directions. The child normally exits on its stdin's
// end; one that does not within a few seconds is killed.
func (c *cmdConn) Close() error {
	c.once.Do(func() {
		c.stdin.Close()
		c.stdout.Close()
		go func() {
			select {
			case <-c.exited:
			case <-time.After(5 * time.Second):
				c.cmd.Process.Kill()
			}
		}()
	})
	return nil
}

// exit waits up to d for the child to exit and returns its exit code
// (-1: still running or killed by a signal) and what it wrote to stderr.
func (c *cmdConn) exit(d time.Duration) (int, string) {
	select {
	case <-c.exited:
	case <-time.After(d):
		return -1, c.readStderr()
	}
	code := 0
	var ee *exec.ExitError
	if errors.As(c.waitErr, &ee) {
		code = ee.ExitCode()
	}
	return code, c.errText
}

// readStderr is the first 8 KiB the child wrote to stderr, trimmed.
func (c *cmdConn) readStderr() string {
	b := make([]byte, 8<<10)
	n, _ := c.stderr.ReadAt(b, 0)
	return strings.TrimSpace(strings.Map(func(r rune) rune {
		if r == '\n' {
			return r
		}
		return printable(r)
	}, strings.ReplaceAll(string(b[:n]), "\r", "")))
}

type cmdAddr struct{ s string }

func (a cmdAddr) Network() string { return "ssh" }
func (a cmdAddr) String() string  { return a.s }

func (c *cmdConn) LocalAddr() net.Addr  { return cmdAddr{"local"} }
func (c *cmdConn) RemoteAddr() net.Addr { return cmdAddr{strings.Join(c.cmd.Args, " ")} }

func (c *cmdConn) SetDeadline(t time.Time) error {
	return errors.Join(c.SetReadDeadline(t), c.SetWriteDeadline(t))
}
func (c *cmdConn) SetReadDeadline(t time.Time) error  { return c.stdout.SetReadDeadline(t) }
func (c *cmdConn) SetWriteDeadline(t time.Time) error { return c.stdin.SetWriteDeadline(t) }

var _ io.ReadWriteCloser = (*cmdConn)(nil)
