package agent

import (
	"context"
	"errors"
	"os"
	"os/exec"
	"os/signal"
	"sync"
	"syscall"

	"golang.org/x/sys/unix"
)

// children starts exec'd processes and collects their exit statuses.
type children interface {
	Start(cmd *exec.Cmd) error
	Wait(cmd *exec.Cmd) (unix.WaitStatus, error)
}

func (s *Server) children() children {
	if s.procs == nil {
		return execChildren{}
	}
	return s.procs
}

// execChildren is the normal case: os/exec waits for its own process.
type execChildren struct{}

func (execChildren) Start(cmd *exec.Cmd) error { return cmd.Start() }

func (execChildren) Wait(cmd *exec.Cmd) (unix.WaitStatus, error) {
	err := cmd.Wait()
	if cmd.ProcessState == nil {
		return 0, err
	}
	return unix.WaitStatus(cmd.ProcessState.Sys().(syscall.WaitStatus)), nil
}

// reaper is used when the agent is PID 1: orphans are reparented to it
// and must be reaped, but a blind wait4(-1) would also steal the statuses
// that exec requests wait for. So the reaper reaps everything and hands
// the statuses of processes it started to their waiters.
type reaper struct {
	mu     sync.Mutex
	byPID  map[int]chan unix.WaitStatus       // running: where its status goes
	byProc map[*exec.Cmd]chan unix.WaitStatus // until Wait collects it
}

func newReaper() *reaper {
	return &reaper{
		byPID:  map[int]chan unix.WaitStatus{},
		byProc: map[*exec.Cmd]chan unix.WaitStatus{},
	}
}

// Run reaps on every SIGCHLD until ctx ends.
func (r *reaper) Run(ctx context.Context) {
	sigs := make(chan os.Signal, 1)
	signal.Notify(sigs, unix.SIGCHLD)
	defer signal.Stop(sigs)
	for {
		r.reapAll()
		select {
		case <-sigs:
		case <-ctx.Done():
			return
		}
	}
}

func (r *reaper) reapAll() {
	for {
		var ws unix.WaitStatus
		pid, err := unix.Wait4(-1, &ws, unix.WNOHANG, nil)
		if errors.Is(err, unix.EINTR) {
			continue
		}
		if err != nil || pid <= 0 {
			return
		}
		// Start holds mu from fork to registration, so a child that
		// exits at once is still routed to its waiter.
		r.mu.Lock()
		if ch, ok := r.byPID[pid]; ok {
			ch <- ws
			// The pid may be reused from now on.
			delete(r.byPID, pid)
		}
		r.mu.Unlock()
	}
}

func (r *reaper) Start(cmd *exec.Cmd) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	if err := cmd.Start(); err != nil {
		return err
	}
	ch := make(chan unix.WaitStatus, 1)
	r.byPID[cmd.Process.Pid] = ch
	r.byProc[cmd] = ch
	return nil
}

func (r *reaper) Wait(cmd *exec.Cmd) (unix.WaitStatus, error) {
	r.mu.Lock()
	ch := r.byProc[cmd]
	delete(r.byProc, cmd)
	r.mu.Unlock()
	if ch == nil {
		return 0, errors.New("process was not started by the reaper")
	}
	ws := <-ch
	// The reaper consumed the exit; only the pidfd is left to free.
	cmd.Process.Release()
	return ws, nil
}

// pipes are the three stdio pipes of an exec'd process.
type pipes struct {
	in, out, err                *os.File // our ends
	childIn, childOut, childErr *os.File
}

func newPipes() (*pipes, error) {
	var p pipes
	var err error
	if p.childIn, p.in, err = os.Pipe(); err != nil {
		return nil, err
	}
	if p.out, p.childOut, err = os.Pipe(); err != nil {
		p.closeAll()
		return nil, err
	}
	if p.err, p.childErr, err = os.Pipe(); err != nil {
		p.closeAll()
		return nil, err
	}
	return &p, nil
}

// closeChildEnds drops our copies of the child's ends, so that reading
// stdout sees EOF when the child (and everything it forked) is done.
func (p *pipes) closeChildEnds() { closeFiles(p.childIn, p.childOut, p.childErr) }
func (p *pipes) closeOurEnds()   { closeFiles(p.in, p.out, p.err) }
func (p *pipes) closeAll()       { p.closeChildEnds(); p.closeOurEnds() }

func closeFiles(fs ...*os.File) {
	for _, f := range fs {
		if f != nil {
			f.Close()
		}
	}
}
