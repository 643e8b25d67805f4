package client

import (
	"context"
	"encoding/json"
	"fmt"
	"net"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"time"

	"github.com/banger-dev/banger/internal/api"
	"github.com/banger-dev/banger/internal/buildinfo"
)

// Remote is a daemon on another machine, reached through the user's own
// OpenSSH client (their keys, agent, ~/.ssh/config and host-key checks)
// running `banger daemon dial-stdio` there: the command's stdin and
// stdout are the connection to that machine's bangerd, as a unix socket
// is to a local one.
type Remote struct {
	URL  string // ssh://[user@]host[:port], as given
	User string // "" = ssh's choice (~/.ssh/config, then the local user)
	Host string
	Port string // "" = ssh's choice
}

var (
	sshUser = regexp.MustCompile(`^[A-Za-z0-9_][A-Za-z0-9_.-]*$`)
	sshHost = regexp.MustCompile(`^[A-Za-z0-9_][A-Za-z0-9_.:-]*$`)
)

// ParseHost reads ssh://[user@]host[:port]. Nothing in it can become an
// ssh option: user and host start with a letter, digit or underscore,
// and ssh gets them after "--".
func ParseHost(s string) (*Remote, error) {
	bad := func(why string) error {
		return fmt.Errorf("host %q: %s (want ssh://[user@]host[:port], e.g. ssh://me@box or ssh://box:2222)", s, why)
	}
	u, err := url.Parse(s)
	if err != nil || u.Scheme == "" {
		return nil, bad("not a URL")
	}
	if u.Scheme != "ssh" {
		return nil, bad("the only remote transport is ssh://")
	}
	if u.Opaque != "" || (u.Path != "" && u.Path != "/") || u.RawQuery != "" || u.Fragment != "" {
		return nil, bad("a remote host takes no path, query or fragment")
	}
	r := &Remote{URL: s, Host: u.Hostname(), Port: u.Port()}
	if u.User != nil {
		if _, ok := u.User.Password(); ok {
			return nil, bad("passwords do not go into the URL (ssh asks, or use a key)")
		}
		r.User = u.User.Username()
		if !sshUser.MatchString(r.User) {
			return nil, bad("bad user name")
		}
	}
	if !sshHost.MatchString(r.Host) {
		return nil, bad("bad host name")
	}
	if r.Port != "" {
		if n, err := strconv.Atoi(r.Port); err != nil || n < 1 || n > 65535 {
			return nil, bad("bad port")
		}
	}
	return r, nil
}

// Exit codes of `banger daemon dial-stdio` the dialer tells apart.
const (
	DialStdioNotRunning  = 3 // --no-start, and no daemon answers
	DialStdioStartFailed = 4 // the daemon could not be started; stderr says why
)

// Hello is the first line `banger daemon dial-stdio` writes once it has
// reached its daemon: the protocol it speaks, checked before any call.
type Hello struct {
	Banger     string `json:"banger"` // HelloMagic
	APIVersion int    `json:"api_version"`
	Version    string `json:"version"`
}

// HelloMagic marks dial-stdio's first line.
const HelloMagic = "dial-stdio"

// VersionError is a remote banger speaking another protocol version.
type VersionError struct {
	URL                     string
	Remote, Local           int
	RemoteBuild, LocalBuild string
}

func (e *VersionError) Error() string {
	return fmt.Sprintf("the banger on %s speaks API version %d (banger %s), this banger speaks API version %d (banger %s): install the same release on both machines",
		e.URL, e.Remote, e.RemoteBuild, e.Local, e.LocalBuild)
}

// ControlPersist is how long an idle OpenSSH master connection stays up
// for the next command.
const ControlPersist = "10m"

// connArgs are ssh's options for reaching r: connection reuse through
// an OpenSSH master socket under controlDir ("" = none), then r's user
// and port.
func (r *Remote) connArgs(controlDir string) []string {
	var a []string
	if controlDir != "" {
		a = append(a, "-o", "ControlMaster=auto", "-o", "ControlPersist="+ControlPersist,
			"-o", "ControlPath="+filepath.Join(controlDir, "ssh-%C"))
	}
	a = append(a, "-o", "ConnectTimeout=20")
	if r.User != "" {
		a = append(a, "-l", r.User)
	}
	if r.Port != "" {
		a = append(a, "-p", r.Port)
	}
	return a
}

// sshArgs is ssh's argv for dial-stdio: the destination after "--",
// then the remote command.
func (r *Remote) sshArgs(controlDir string, start bool) []string {
	a := append(r.connArgs(controlDir), "-T", "--", r.Host, "banger", "daemon", "dial-stdio")
	if !start {
		a = append(a, "--no-start")
	}
	return a
}

// ProxyCommand is an OpenSSH ProxyCommand that reaches %h:%p from r:
// what ProxyJump expands to, but run by sshBin with the user's own
// ssh_config (a -J would carry the caller's -F into the hop) and through
// the same master connection as dial-stdio. Every part is validated or
// quoted for the shell ssh runs it with; '%' is doubled against ssh's
// token expansion.
func (r *Remote) ProxyCommand(sshBin, controlDir string) string {
	a := append([]string{sshBin}, r.connArgs(controlDir)...)
	a = append(a, "-W", "[%h]:%p", "--", r.Host)
	for i, s := range a {
		if i == len(a)-3 { // "[%h]:%p" is ssh's to expand
			continue
		}
		a[i] = strings.ReplaceAll(ShellQuote(s), "%", "%%")
	}
	return strings.Join(a, " ")
}

// ControlDir is where the OpenSSH master sockets go ("" = no reuse).
func (c *Client) ControlDir() string {
	if c.Paths.RuntimeDir != "" && c.Paths.EnsureRuntimeDir() == nil {
		return c.Paths.RuntimeDir
	}
	return ""
}

// ShellQuote quotes s for a POSIX shell: inside single quotes nothing
// is special, and an embedded quote is closed, escaped and reopened.
func ShellQuote(s string) string {
	if shellSafe.MatchString(s) {
		return s
	}
	return "'" + strings.ReplaceAll(s, "'", `'\''`) + "'"
}

var shellSafe = regexp.MustCompile(`^[A-Za-z0-9@%+=:,./_-]+$`)

// dialRemote runs ssh and returns the connection once the remote
// dial-stdio has greeted with a protocol version this banger speaks.
func (c *Client) dialRemote(ctx context.Context, start bool) (net.Conn, error) {
	r := c.Remote
	sshBin, err := exec.LookPath("ssh")
	if err != nil {
		return nil, fmt.Errorf("ssh not found: install OpenSSH's client (apt-get install openssh-client) to reach %s", r.URL)
	}
	dir, control := os.TempDir(), c.ControlDir()
	if control != "" {
		dir = control
	}
	conn, err := startCmdConn(sshBin, r.sshArgs(control, start), dir)
	if err != nil {
		return nil, fmt.Errorf("run ssh for %s: %w", r.URL, err)
	}
	stop := context.AfterFunc(ctx, func() { conn.Close() })
	line, rerr := conn.r.ReadSlice('\n')
	stop()
	if rerr != nil {
		conn.Close()
		if ctx.Err() != nil {
			return nil, ctx.Err()
		}
		return nil, r.failure(conn)
	}
	var h Hello
	if json.Unmarshal(line, &h) != nil || h.Banger != HelloMagic {
		conn.Close()
		return nil, fmt.Errorf("%s: unexpected output before banger's greeting: %q (does a login script of the remote shell print to stdout?)",
			r.URL, strings.TrimSpace(string(line)))
	}
	if h.APIVersion != api.Version {
		conn.Close()
		return nil, &VersionError{URL: r.URL, Remote: h.APIVersion, Local: api.Version,
			RemoteBuild: h.Version, LocalBuild: buildinfo.Current("").Version}
	}
	return conn, nil
}

// failure says why ssh or the remote dial-stdio ended before greeting.
func (r *Remote) failure(conn *cmdConn) error {
	code, stderr := conn.exit(5 * time.Second)
	said := stderr
	if said == "" {
		said = fmt.Sprintf("ssh exited with status %d and said nothing", code)
	}
	switch {
	case code == DialStdioNotRunning:
		return fmt.Errorf("%w on %s", ErrNotRunning, r.URL)
	case code == 127 || strings.Contains(stderr, "banger: command not found") || strings.Contains(stderr, "banger: not found"):
		return fmt.Errorf("no banger on the PATH of %s: install banger and bangerd there, in a directory on the PATH of non-interactive ssh sessions "+
			"such as /usr/local/bin (`make install` from banger's source tree, or copy bin/banger and bin/bangerd) (the remote shell said: %s)", r.URL, said)
	case code == DialStdioStartFailed:
		return fmt.Errorf("the banger daemon on %s cannot start: %s", r.URL, strings.TrimPrefix(said, "banger: "))
	case strings.Contains(stderr, `unknown command "dial-stdio"`):
		return &VersionError{URL: r.URL, Remote: 0, Local: api.Version, RemoteBuild: "older than daemon dial-stdio",
			LocalBuild: buildinfo.Current("").Version}
	case code == 255:
		return fmt.Errorf("cannot reach %s over ssh: %s", r.URL, said)
	}
	return fmt.Errorf("%s: `banger daemon dial-stdio` failed (exit %d): %s", r.URL, code, said)
}

// VMSSHRemote is VMSSH with the guest's pin and key (vm.ssh_remote).
func (c *Client) VMSSHRemote(ctx context.Context, p api.SSHParams, onProgress func(api.Progress)) (api.SSHRemoteInfo, error) {
	return call[api.SSHRemoteInfo](ctx, c, api.MethodVMSSHRemote, p, onProgress)
}

// RemoteCommand is `ssh HOST ARGS…` through the same options and master
// connection as dial-stdio, for what runs on the remote machine itself
// rather than in its daemon (`banger --host … doctor`).
func (c *Client) RemoteCommand(ctx context.Context, args ...string) (*exec.Cmd, error) {
	sshBin, err := exec.LookPath("ssh")
	if err != nil {
		return nil, fmt.Errorf("ssh not found: install OpenSSH's client (apt-get install openssh-client) to reach %s", c.Remote.URL)
	}
	a := append(c.Remote.connArgs(c.ControlDir()), "--", c.Remote.Host)
	return exec.CommandContext(ctx, sshBin, append(a, args...)...), nil
}
