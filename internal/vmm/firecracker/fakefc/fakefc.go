// Package fakefc is a fake Firecracker for tests: a real program (built
// from cmd/fake-firecracker) that serves Firecracker's API on --api-sock
// with the upstream semantics the driver relies on — strict JSON, id
// rules, pre-boot versus running state, version-dependent fields, the vsock
// uds bound at PUT /vsock with hybrid-vsock CONNECT, exit on
// SendCtrlAltDel — and a tiny guest agent that answers banger's channel
// handshake. It boots nothing. Extra --fake-* flags record requests and
// inject failures.
package fakefc

import (
	"errors"
	"flag"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"time"
)

// Exit codes, as Firecracker uses them.
const (
	exitOK       = 0
	exitGeneric  = 1
	exitArgParse = 153
)

// config is the command line: Firecracker's own flags plus the fake's.
type config struct {
	apiSock string
	id      string

	record       string        // JSON-lines file of every request
	version      string        // what GET /version reports
	exitEarly    string        // print this to stderr and exit 1 before binding
	exitOn       string        // exit 1, without answering, on a request to this path
	failPath     string        // answer 400 to any request to this path
	noSocket     bool          // never create the API socket
	noAgent      bool          // no guest listener on any vsock port
	agentDelay   time.Duration // the agent listens this long after InstanceStart
	ignoreCAD    bool          // the guest ignores Ctrl-Alt-Del
	cadExitDelay time.Duration // time from SendCtrlAltDel to exit
	// stayAfterFailedLoad keeps serving after a failed snapshot load
	// (Firecracker exits), for in-process tests.
	stayAfterFailedLoad bool
}

func parseFlags(args []string, stderr io.Writer) (config, error) {
	var c config
	fs := flag.NewFlagSet("firecracker", flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.StringVar(&c.apiSock, "api-sock", "/run/firecracker.socket", "API socket path")
	fs.StringVar(&c.id, "id", "anonymous-instance", "instance id")
	// Accepted and ignored, as the real binary would take them.
	fs.String("level", "", "log level")
	fs.String("log-path", "", "log path")
	fs.Int64("start-time-us", 0, "set by the jailer")
	fs.Bool("boot-timer", false, "boot timer")

	fs.StringVar(&c.record, "fake-record", os.Getenv("FAKEFC_RECORD"), "append every request to this JSON-lines file")
	fs.StringVar(&c.version, "fake-version", "1.16.1", "firecracker version to report and emulate")
	fs.StringVar(&c.exitEarly, "fake-exit-early", "", "write this to stderr and exit 1 before binding the socket")
	fs.StringVar(&c.exitOn, "fake-exit-on", "", "exit 1 without answering on a request to this path")
	fs.StringVar(&c.failPath, "fake-fail", "", "answer 400 to requests to this path")
	fs.BoolVar(&c.noSocket, "fake-no-socket", false, "never create the API socket")
	fs.BoolVar(&c.noAgent, "fake-no-agent", false, "never accept agent connections")
	fs.DurationVar(&c.agentDelay, "fake-agent-delay", 0, "delay from InstanceStart until the agent listens")
	fs.BoolVar(&c.ignoreCAD, "fake-ignore-ctrlaltdel", false, "keep running after SendCtrlAltDel")
	fs.DurationVar(&c.cadExitDelay, "fake-ctrlaltdel-delay", 50*time.Millisecond, "time from SendCtrlAltDel to exit")
	fs.BoolVar(&c.stayAfterFailedLoad, "fake-stay-after-failed-load", false, "keep running after a failed snapshot load")
	if err := fs.Parse(args); err != nil {
		return c, err
	}
	if fs.NArg() > 0 {
		return c, fmt.Errorf("unexpected arguments %q", fs.Args())
	}
	return c, nil
}

// Main runs the fake and returns its exit code.
func Main(args []string, stdout, stderr io.Writer) int {
	cfg, err := parseFlags(args, stderr)
	if err != nil {
		fmt.Fprintf(stderr, "Arguments parsing error: %v\n", err)
		return exitArgParse
	}
	v, err := parseVersion(cfg.version)
	if err != nil {
		fmt.Fprintln(stderr, err)
		return exitArgParse
	}
	if cfg.exitEarly != "" {
		fmt.Fprintln(stderr, cfg.exitEarly)
		return exitGeneric
	}
	if cfg.noSocket {
		fmt.Fprintln(stderr, "fake-firecracker: not creating the API socket")
		for {
			time.Sleep(time.Hour)
		}
	}
	// Like Firecracker: an existing path is an error, never removed.
	ln, err := net.Listen("unix", cfg.apiSock)
	if err != nil {
		fmt.Fprintf(stderr, "Failed to open the API socket at %s: %v\n", cfg.apiSock, err)
		return exitGeneric
	}
	ln.(*net.UnixListener).SetUnlinkOnClose(false) // Firecracker leaves it behind
	s := newServer(cfg, v, stdout, stderr)
	err = (&http.Server{Handler: s, ReadHeaderTimeout: 10 * time.Second}).Serve(ln)
	if !errors.Is(err, http.ErrServerClosed) {
		fmt.Fprintf(stderr, "api server: %v\n", err)
		return exitGeneric
	}
	return exitOK
}

// version is major*10000+minor*100+patch; enough for gating comparisons.
type version int

func parseVersion(s string) (version, error) {
	var a, b, c int
	if _, err := fmt.Sscanf(s, "%d.%d.%d", &a, &b, &c); err != nil {
		return 0, fmt.Errorf("bad --fake-version %q: %w", s, err)
	}
	return version(a*10000 + b*100 + c), nil
}

func (v version) atLeast(major, minor int) bool { return int(v) >= major*10000+minor*100 }
