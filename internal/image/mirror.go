package image

import (
	"bufio"
	"os"
	"path/filepath"
	"sort"
	"strings"
)

// FallbackMirror is used when the host's apt sources name no Debian mirror
// for the suite being built.
const FallbackMirror = "http://deb.debian.org/debian"

// FallbackSecurityMirror is the security archive used when the host's apt
// sources name none but a security suite is wanted.
const FallbackSecurityMirror = "http://deb.debian.org/debian-security"

// aptSource is one "deb" entry from either sources format.
type aptSource struct {
	uri        string
	suites     []string
	components []string
}

// DefaultMirror returns the host's Debian mirror for suite: the first
// enabled "deb" source carrying suite's main component in
// /etc/apt/sources.list, then /etc/apt/sources.list.d/*.list and *.sources
// in name order (apt's own reading order). Reusing the host's mirror keeps
// builds on whatever mirror (or proxy) the machine is already allowed to use.
func DefaultMirror(suite string) string {
	if m := findMirror(readHostSources("/"), suite); m != "" {
		return m
	}
	return FallbackMirror
}

// defaultSecurityMirror is DefaultMirror for "<suite>-security".
func defaultSecurityMirror(suite string) string {
	if m := findMirror(readHostSources("/"), suite+"-security"); m != "" {
		return m
	}
	return FallbackSecurityMirror
}

// readHostSources parses the apt sources under root (a directory standing
// for "/", so tests can use a fake tree). Unreadable files are skipped: a
// mirror is a preference, the fallback always works.
func readHostSources(root string) []aptSource {
	var out []aptSource
	if b, err := os.ReadFile(filepath.Join(root, "etc/apt/sources.list")); err == nil {
		out = append(out, parseOneLine(string(b))...)
	}
	dir := filepath.Join(root, "etc/apt/sources.list.d")
	entries, _ := os.ReadDir(dir)
	names := make([]string, 0, len(entries))
	for _, e := range entries {
		names = append(names, e.Name())
	}
	sort.Strings(names)
	for _, n := range names {
		b, err := os.ReadFile(filepath.Join(dir, n))
		if err != nil {
			continue
		}
		switch {
		case strings.HasSuffix(n, ".list"):
			out = append(out, parseOneLine(string(b))...)
		case strings.HasSuffix(n, ".sources"):
			out = append(out, parseDeb822(string(b))...)
		}
	}
	return out
}

// findMirror picks the first source whose suites include suite exactly and
// whose components include main. Matching the suite name, not the host name
// in the URI, is what tells a Debian archive from third-party repositories
// that also call their component "main" (nodesource, Google Cloud SDK).
func findMirror(sources []aptSource, suite string) string {
	for _, s := range sources {
		if !usableURI(s.uri) || !contains(s.suites, suite) || !contains(s.components, "main") {
			continue
		}
		return strings.TrimRight(s.uri, "/")
	}
	return ""
}

// usableURI accepts the URI schemes mmdebstrap can fetch from directly.
func usableURI(u string) bool {
	for _, p := range []string{"http://", "https://", "file:/"} {
		if strings.HasPrefix(u, p) {
			return true
		}
	}
	return false
}

func contains(list []string, v string) bool {
	for _, x := range list {
		if x == v {
			return true
		}
	}
	return false
}

// parseOneLine reads the classic format:
// "deb [opt=val ...] uri suite component...".
func parseOneLine(text string) []aptSource {
	var out []aptSource
	sc := bufio.NewScanner(strings.NewReader(text))
	for sc.Scan() {
		line := sc.Text()
		if i := strings.IndexByte(line, '#'); i >= 0 {
			line = line[:i]
		}
		f := strings.Fields(line)
		if len(f) < 3 || f[0] != "deb" {
			continue
		}
		f = f[1:]
		if strings.HasPrefix(f[0], "[") {
			// Options may contain spaces; skip to the closing bracket.
			for len(f) > 0 && !strings.HasSuffix(f[0], "]") {
				f = f[1:]
			}
			if len(f) == 0 {
				continue
			}
			f = f[1:]
		}
		if len(f) < 2 {
			continue
		}
		out = append(out, aptSource{uri: f[0], suites: []string{f[1]}, components: f[2:]})
	}
	return out
}

// parseDeb822 reads the deb822 format: stanzas separated by blank lines,
// with Types/URIs/Suites/Components fields and optional "Enabled: no".
func parseDeb822(text string) []aptSource {
	var out []aptSource
	fields := map[string]string{}
	last := ""
	flush := func() {
		defer func() { fields = map[string]string{}; last = "" }()
		if strings.EqualFold(fields["enabled"], "no") || !contains(strings.Fields(fields["types"]), "deb") {
			return
		}
		suites := strings.Fields(fields["suites"])
		comps := strings.Fields(fields["components"])
		for _, u := range strings.Fields(fields["uris"]) {
			out = append(out, aptSource{uri: u, suites: suites, components: comps})
		}
	}
	sc := bufio.NewScanner(strings.NewReader(text))
	for sc.Scan() {
		line := sc.Text()
		switch {
		case strings.TrimSpace(line) == "":
			flush()
		case strings.HasPrefix(line, "#"):
		case line[0] == ' ' || line[0] == '\t':
			// Continuation line (e.g. an inline Signed-By key block).
			if last != "" {
				fields[last] += " " + strings.TrimSpace(line)
			}
		default:
			k, v, ok := strings.Cut(line, ":")
			if !ok {
				continue
			}
			last = strings.ToLower(strings.TrimSpace(k))
			fields[last] = strings.TrimSpace(v)
		}
	}
	flush()
	return out
}
