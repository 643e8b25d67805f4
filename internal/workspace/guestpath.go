package workspace

import (
	"fmt"
	"path"
	"strings"

	"github.com/banger-dev/banger/internal/config"
)

// DefaultGuestPath is where an import lands unless told otherwise.
const DefaultGuestPath = config.GuestHome + "/repo"

// GuestPath validates a guest path for a workspace and returns it
// absolute: it must name a directory below the guest user's home (~/ or
// /root/), without "..".
func GuestPath(p string) (string, error) {
	if p == "" {
		return DefaultGuestPath, nil
	}
	orig := p
	if rest, ok := strings.CutPrefix(p, "~/"); ok {
		p = config.GuestHome + "/" + rest
	}
	for _, c := range strings.Split(p, "/") {
		if c == ".." {
			return "", fmt.Errorf("guest path %q must not contain ..", orig)
		}
	}
	p = path.Clean(p)
	if !strings.HasPrefix(p, config.GuestHome+"/") {
		return "", fmt.Errorf("guest path %q must be below %s/ (or ~/)", orig, config.GuestHome)
	}
	return p, nil
}
