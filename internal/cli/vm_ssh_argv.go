package cli

import (
	"fmt"
	"net/netip"
	"path/filepath"
	"regexp"
	"strings"

	"github.com/banger-dev/banger/internal/api"
	"github.com/banger-dev/banger/internal/client"
)

// remoteCommand is what ssh sends as the command. OpenSSH joins its
// arguments with spaces and the remote shell splits them again, so
// `sh -c 'a && b'` would arrive as sh -c a, then b. One argument stays a
// command line for the remote shell; several are an argv, each quoted.
func remoteCommand(args []string) string {
	if len(args) == 1 {
		return args[0]
	}
	q := make([]string, len(args))
	for i, a := range args {
		q[i] = client.ShellQuote(a)
	}
	return strings.Join(q, " ")
}

var (
	posixUser = regexp.MustCompile(`^[A-Za-z_][A-Za-z0-9_.-]{0,31}$`)
	hostLabel = regexp.MustCompile(`^[A-Za-z0-9]([A-Za-z0-9-]{0,61}[A-Za-z0-9])?$`)
)

// validateSSHInfo checks every value from the daemon that reaches ssh's
// argv: the daemon's socket is checked, but a value that could become
// an option (-oProxyCommand=…) must never get that far.
func validateSSHInfo(info api.SSHInfo) error {
	bad := func(what, v, why string) error {
		return fmt.Errorf("refusing to run ssh: the daemon sent %s %q, which %s", what, v, why)
	}
	if !posixUser.MatchString(info.User) {
		return bad("user", info.User, "is not a POSIX user name")
	}
	if !validHost(info.Host) {
		return bad("host", info.Host, "is neither an IP address nor a DNS name")
	}
	if !validHost(info.HostKeyAlias) {
		return bad("host key alias", info.HostKeyAlias, "is not a DNS name")
	}
	for _, p := range []struct{ what, v string }{{"identity file", info.IdentityFile}, {"known_hosts file", info.KnownHostsFile}} {
		if why := badPath(p.v); why != "" {
			return bad(p.what, p.v, why)
		}
	}
	return nil
}

func validHost(h string) bool {
	if a, err := netip.ParseAddr(h); err == nil {
		return a.Zone() == ""
	}
	if h == "" || len(h) > 253 {
		return false
	}
	for _, l := range strings.Split(h, ".") {
		if !hostLabel.MatchString(l) {
			return false
		}
	}
	return true
}

// badPath says why p cannot go to ssh: it must be absolute and clean,
// with no control characters, and none of the characters ssh's option
// parser or its %-expansion would read specially.
func badPath(p string) string {
	switch {
	case !filepath.IsAbs(p) || filepath.Clean(p) != p:
		return "is not a clean absolute path"
	case strings.IndexFunc(p, func(r rune) bool { return r < 0x20 || r == 0x7f }) >= 0:
		return "contains control characters"
	case strings.ContainsAny(p, `"\%'`):
		return `contains a quote, a backslash or %`
	}
	return ""
}
