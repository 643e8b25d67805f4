package firecracker

import (
	"context"
	"encoding/json"
	"fmt"
	"os/exec"
	"strconv"
	"strings"

	"github.com/banger-dev/banger/internal/vmm"
)

// Version is a Firecracker release number as GET /version reports it
// ("1.16.1", "1.17.0-dev").
type Version struct {
	Major, Minor, Patch int
	Pre                 string // "dev" for builds of the main branch
}

// ParseVersion accepts "1.16.1", "v1.16.1" and "1.17.0-dev-12-gabc".
func ParseVersion(s string) (Version, error) {
	s = strings.TrimPrefix(strings.TrimSpace(s), "v")
	core, pre, _ := strings.Cut(s, "-")
	parts := strings.Split(core, ".")
	if len(parts) != 3 {
		return Version{}, fmt.Errorf("parse firecracker version %q: want MAJOR.MINOR.PATCH", s)
	}
	var n [3]int
	for i, p := range parts {
		v, err := strconv.Atoi(p)
		if err != nil || v < 0 {
			return Version{}, fmt.Errorf("parse firecracker version %q: bad number %q", s, p)
		}
		n[i] = v
	}
	return Version{n[0], n[1], n[2], pre}, nil
}

func (v Version) String() string {
	s := fmt.Sprintf("%d.%d.%d", v.Major, v.Minor, v.Patch)
	if v.Pre != "" {
		s += "-" + v.Pre
	}
	return s
}

// AtLeast compares release numbers only. A pre-release such as
// "1.17.0-dev" counts as 1.17.0: it is a build of main, which already has
// every field listed for 1.17 (the spec snapshot is 1.17.0-dev).
func (v Version) AtLeast(o Version) bool {
	if v.Major != o.Major {
		return v.Major > o.Major
	}
	if v.Minor != o.Minor {
		return v.Minor > o.Minor
	}
	return v.Patch >= o.Patch
}

// fieldMinVersion lists request fields (endpoint.field, endpoint without
// its path parameter) that older releases reject as unknown, with the first
// release that accepts them. Fields not listed are in every release this
// driver supports. Sources: firecracker-notes.md ("Version caveat": what
// main has over v1.16.1) and the field tables there (mtu is v1.16+).
var fieldMinVersion = map[string]Version{
	"metrics.emit_id":        {Major: 1, Minor: 17},
	"metrics.properties":     {Major: 1, Minor: 17},
	"network-interfaces.mtu": {Major: 1, Minor: 16},
	// firecracker-notes.md: vsock_override is v1.16+, huge_pages main-only.
	"snapshot/load.vsock_override": {Major: 1, Minor: 16},
	"snapshot/load.huge_pages":     {Major: 1, Minor: 17},
	// Not in the notes, and its first release is not verified here: gated
	// at 1.13, the lowest version other Firecracker users are seen to
	// require for it. Below it, a restored NIC keeps the saved TAP.
	"snapshot/load.network_overrides": {Major: 1, Minor: 13},
	// A value, not a field: huge_pages "Transparent" is main-only.
	"machine-config.huge_pages=Transparent": {Major: 1, Minor: 17},
}

// Supports reports whether the running version knows a gated field.
func (v Version) Supports(field string) bool {
	min, gated := fieldMinVersion[field]
	return !gated || v.AtLeast(min)
}

// checkFields refuses a body that carries a field (or gated value) the
// running version does not know. It is the last guard before a request
// leaves, so a builder bug cannot turn into a 400 from a strict server.
func checkFields(v Version, path string, body any) error {
	if body == nil {
		return nil
	}
	b, err := json.Marshal(body)
	if err != nil {
		return err
	}
	var fields map[string]any
	if json.Unmarshal(b, &fields) != nil {
		return nil // not an object: nothing to gate
	}
	endpoint := endpointName(path)
	for name, val := range fields {
		key := endpoint + "." + name
		if !v.Supports(key) {
			return fmt.Errorf("firecracker %s does not know %s (needs %s)", v, key, fieldMinVersion[key])
		}
		if s, ok := val.(string); ok && !v.Supports(key+"="+s) {
			return fmt.Errorf("firecracker %s does not accept %s=%s", v, key, s)
		}
	}
	return nil
}

// endpointName turns "/drives/root" into "drives".
func endpointName(path string) string {
	p := strings.TrimPrefix(path, "/")
	if first, _, ok := strings.Cut(p, "/"); ok && first != "mmds" && first != "snapshot" {
		return first
	}
	return p
}

var _ vmm.Versioner = (*Driver)(nil)

// Version is the release of the configured firecracker binary, from its
// `--version` (asked once per driver), in the form GET /version gives
// SavedState.VMMVersion ("1.16.1"). A snapshot loads only into the
// Firecracker that wrote it.
func (d *Driver) Version(context.Context) (string, error) {
	d.versionOnce.Do(func() {
		bin, err := d.binary()
		if err != nil {
			d.versionErr = err
			return
		}
		out, err := exec.Command(bin, "--version").Output()
		if err != nil {
			d.versionErr = fmt.Errorf("%s --version: %w", bin, err)
			return
		}
		v, err := parseVersionOutput(string(out))
		if err != nil {
			d.versionErr = err
			return
		}
		d.version = v.String()
	})
	return d.version, d.versionErr
}

// parseVersionOutput reads "Firecracker v1.16.1" from the first line of
// `firecracker --version`.
func parseVersionOutput(out string) (Version, error) {
	line, _, _ := strings.Cut(strings.TrimSpace(out), "\n")
	f := strings.Fields(line)
	if len(f) < 2 || f[0] != "Firecracker" {
		return Version{}, fmt.Errorf("firecracker --version: cannot read a version from %q", line)
	}
	return ParseVersion(f[1])
}
