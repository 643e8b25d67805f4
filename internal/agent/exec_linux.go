package agent

import (
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"golang.org/x/sys/unix"

	"github.com/banger-dev/banger/internal/agent/proto"
)

const defaultPath = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"

// defaultEnv is the environment of every exec'd process before the
// request's own variables; the agent's environment (a kernel's or
// systemd's) says nothing useful about a user's shell.
var defaultEnv = []string{
	"PATH=" + defaultPath,
	"HOME=/root",
	"USER=root",
	"LOGNAME=root",
	"LANG=C.UTF-8",
	"TERM=xterm",
}

// drainGrace is how long an output pipe may stay silent after the process
// exited before it is given up on: a background child that inherited it
// would otherwise hold the exec open forever.
const drainGrace = time.Second

// execution is one running exec request.
type execution struct {
	cmd            *exec.Cmd
	stdin          *os.File // write end
	stdout, stderr *os.File // read ends; stderr is nil with a TTY
	tty            *os.File // a TTY exec's terminal master (also stdin and stdout)
	exited         atomic.Bool

	mu   sync.Mutex
	done bool // exit status sent: the process group is no longer ours
}

func (s *Server) handleExec(st net.Conn, req *proto.ExecRequest) {
	defer st.Close()
	x, err := s.startExec(req)
	if err != nil {
		proto.WriteLine(st, proto.Response{Error: err.Error()})
		return
	}
	// A failed reply still runs the loop below: the frame reader sees the
	// broken stream and kills the process, and the exit is reaped.
	proto.WriteLine(st, proto.Response{OK: true})
	if req.ReportPID {
		pid := make([]byte, 4)
		binary.BigEndian.PutUint32(pid, uint32(x.cmd.Process.Pid))
		proto.WriteFrame(st, proto.FramePID, pid)
	}
	x.run(st, s.children())
}

func (s *Server) startExec(req *proto.ExecRequest) (*execution, error) {
	if req == nil || len(req.Argv) == 0 {
		return nil, errors.New("exec: empty argv")
	}
	env := append([]string{}, defaultEnv...)
	dir := req.Dir
	var cred *syscall.Credential
	if req.User != "" {
		a, err := lookupAccount("/", req.User)
		if err != nil {
			return nil, fmt.Errorf("exec: %w", err)
		}
		cred = &syscall.Credential{Uid: a.uid, Gid: a.gid, Groups: a.groups}
		env = append(env, "HOME="+a.home, "USER="+a.name, "LOGNAME="+a.name)
		if dir == "" {
			dir = homeOr(a.home)
		}
	}
	env = append(env, req.Env...)
	path, err := lookPath(req.Argv[0], envValue(env, "PATH"))
	if err != nil {
		return nil, err
	}
	if dir == "" {
		dir = defaultDir()
	} else if req.MakeDir {
		if err := os.MkdirAll(dir, 0o755); err != nil {
			return nil, fmt.Errorf("exec: working directory: %w", err)
		}
	}
	if req.TTY != nil {
		return s.startTTYExec(req, path, env, dir, cred)
	}
	p, err := newPipes()
	if err != nil {
		return nil, fmt.Errorf("exec: %w", err)
	}
	cmd := &exec.Cmd{
		Path: path, Args: req.Argv, Env: env, Dir: dir,
		Stdin: p.childIn, Stdout: p.childOut, Stderr: p.childErr,
		// Its own session, hence its own process group: signals and
		// the final kill reach everything it started, and it never
		// shares the console's job control with the agent.
		SysProcAttr: &syscall.SysProcAttr{Setsid: true, Credential: cred},
	}
	err = s.children().Start(cmd)
	p.closeChildEnds()
	if err != nil {
		p.closeOurEnds()
		return nil, fmt.Errorf("exec %s: %w", req.Argv[0], err)
	}
	return &execution{cmd: cmd, stdin: p.in, stdout: p.out, stderr: p.err}, nil
}

// startTTYExec starts the process on a new pseudo-terminal, as its
// session leader with the terminal as controlling TTY (so Ctrl-C typed on
// the host's raw terminal reaches it as SIGINT, and job control works).
func (s *Server) startTTYExec(req *proto.ExecRequest, path string, env []string, dir string, cred *syscall.Credential) (*execution, error) {
	master, slave, err := openPTY(*req.TTY)
	if err != nil {
		return nil, fmt.Errorf("exec: %w", err)
	}
	if cred != nil {
		// The user owns its terminal, as after a login: programs that
		// reopen it by name (ttyname) can.
		if err := slave.Chown(int(cred.Uid), -1); err != nil {
			master.Close()
			slave.Close()
			return nil, fmt.Errorf("exec: terminal owner: %w", err)
		}
	}
	cmd := &exec.Cmd{
		Path: path, Args: req.Argv, Env: env, Dir: dir,
		Stdin: slave, Stdout: slave, Stderr: slave,
		SysProcAttr: &syscall.SysProcAttr{Setsid: true, Setctty: true, Ctty: 0, Credential: cred},
	}
	err = s.children().Start(cmd)
	slave.Close()
	if err != nil {
		master.Close()
		return nil, fmt.Errorf("exec %s: %w", req.Argv[0], err)
	}
	return &execution{cmd: cmd, stdin: master, stdout: master, tty: master}, nil
}

// run streams the process's stdio over st until it exits and its output
// is drained, then sends the exit status.
func (x *execution) run(st net.Conn, procs children) {
	w := &lockedWriter{w: st}
	go x.readFrames(st)
	var drained sync.WaitGroup
	drained.Add(1)
	go x.copyOut(x.stdout, proto.FrameWriter{W: w, Type: proto.FrameStdout}, &drained)
	if x.stderr != nil {
		drained.Add(1)
		go x.copyOut(x.stderr, proto.FrameWriter{W: w, Type: proto.FrameStderr}, &drained)
	}

	ws, err := procs.Wait(x.cmd)
	x.exited.Store(true)
	x.stdout.SetReadDeadline(time.Now().Add(drainGrace))
	if x.stderr != nil {
		x.stderr.SetReadDeadline(time.Now().Add(drainGrace))
	}
	if x.tty == nil {
		x.stdin.Close() // a TTY's master is also its output: closed below
	}
	drained.Wait()
	x.stdout.Close()
	if x.stderr != nil {
		x.stderr.Close()
	}

	x.mu.Lock()
	x.done = true
	x.mu.Unlock()
	payload, _ := json.Marshal(exitStatus(ws, err))
	w.frame(proto.FrameExit, payload)
}

// readFrames applies the host's stdin and signal frames. The stream
// ending before the exit status was sent means the host gave up: the
// process group is killed.
func (x *execution) readFrames(st net.Conn) {
	for {
		typ, p, err := proto.ReadFrame(st)
		if err != nil {
			x.signal(unix.SIGKILL)
			return
		}
		switch typ {
		case proto.FrameStdin:
			// Errors mean the process closed stdin or exited: the rest
			// of its input is dropped, as a pipe would.
			x.stdin.Write(p)
		case proto.FrameStdinEOF:
			// A terminal has no end of input short of hanging up, which
			// would end the session: the process decides when it is done.
			if x.tty == nil {
				x.stdin.Close()
			}
		case proto.FrameResize:
			if ws, ok := proto.ParseResize(p); ok && x.tty != nil {
				setWinSize(x.tty, ws)
			}
		case proto.FrameSignal:
			if len(p) == 1 && p[0] > 0 && p[0] < 65 {
				x.signal(unix.Signal(p[0]))
			}
		}
	}
}

func (x *execution) signal(sig unix.Signal) {
	x.mu.Lock()
	defer x.mu.Unlock()
	if !x.done {
		unix.Kill(-x.cmd.Process.Pid, sig)
	}
}

// copyOut forwards one output pipe. Once the process has exited every
// read gets drainGrace to produce data; buffered output still flows.
func (x *execution) copyOut(r *os.File, w io.Writer, wg *sync.WaitGroup) {
	defer wg.Done()
	buf := make([]byte, 32<<10)
	for {
		if x.exited.Load() {
			r.SetReadDeadline(time.Now().Add(drainGrace))
		}
		n, err := r.Read(buf)
		if n > 0 && w != nil {
			if _, werr := w.Write(buf[:n]); werr != nil {
				// The host is gone; keep draining so the process
				// never blocks on a full pipe before it is killed.
				w = nil
			}
		}
		if err != nil {
			return
		}
	}
}

func exitStatus(ws unix.WaitStatus, err error) proto.ExitStatus {
	switch {
	case err != nil:
		return proto.ExitStatus{Code: 255, Error: err.Error()}
	case ws.Signaled():
		return proto.ExitStatus{Code: 128 + int(ws.Signal()), Signal: unix.SignalName(ws.Signal())}
	default:
		return proto.ExitStatus{Code: ws.ExitStatus()}
	}
}

// lockedWriter serialises the stdout, stderr and exit writers on a stream.
type lockedWriter struct {
	mu sync.Mutex
	w  io.Writer
}

func (l *lockedWriter) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.w.Write(p)
}

func (l *lockedWriter) frame(typ byte, p []byte) error {
	l.mu.Lock()
	defer l.mu.Unlock()
	return proto.WriteFrame(l.w, typ, p)
}

// homeOr is home when it is a directory, else /.
func homeOr(home string) string {
	if st, err := os.Stat(home); err == nil && st.IsDir() {
		return home
	}
	return "/"
}

// defaultDir is /root, or / in an image that has none.
func defaultDir() string {
	if st, err := os.Stat("/root"); err == nil && st.IsDir() {
		return "/root"
	}
	return "/"
}

// lookPath resolves name with the child's PATH, not the agent's: as init
// the agent may have been started with no PATH at all.
func lookPath(name, path string) (string, error) {
	if strings.Contains(name, "/") {
		return name, nil
	}
	for _, dir := range filepath.SplitList(path) {
		if dir == "" {
			continue
		}
		p := filepath.Join(dir, name)
		if st, err := os.Stat(p); err == nil && st.Mode().IsRegular() && st.Mode()&0o111 != 0 {
			return p, nil
		}
	}
	return "", fmt.Errorf("exec %s: command not found", name)
}

// envValue returns the last value of key in env (later entries win, as
// exec.Cmd does when it deduplicates).
func envValue(env []string, key string) string {
	v := ""
	for _, kv := range env {
		if k, val, ok := strings.Cut(kv, "="); ok && k == key {
			v = val
		}
	}
	return v
}
