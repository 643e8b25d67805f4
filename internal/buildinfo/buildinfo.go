// Package buildinfo says which build of banger a binary is: the version
// `make build` stamps in with -ldflags -X, else what the Go toolchain
// recorded (module version, VCS revision, dirty flag), so a plain
// `go build` or `go install` still tells builds apart.
package buildinfo

import (
	"debug/buildinfo"
	"runtime/debug"
	"strings"
)

// Version is set by `make build`:
// -ldflags "-X github.com/banger-dev/banger/internal/buildinfo.Version=...".
var Version = ""

// versionVars are the -X variables that carry banger's version, newest
// first; the older two are still set by the Makefile.
var versionVars = []string{
	"github.com/banger-dev/banger/internal/buildinfo.Version",
	"github.com/banger-dev/banger/internal/daemon.Version",
	"github.com/banger-dev/banger/internal/agent.Version",
}

// Info describes one build.
type Info struct {
	Version  string `json:"version"`
	Commit   string `json:"commit,omitempty"`
	Modified bool   `json:"modified,omitempty"`
	Time     string `json:"commit_time,omitempty"`
	Go       string `json:"go,omitempty"`
	// From says where Version came from: ldflags | module | vcs | none.
	From string `json:"from"`
}

// String is a one-line form: "v1.2 (abc123def456, go1.26.0)".
func (i Info) String() string {
	var extra []string
	if i.Commit != "" && !strings.Contains(i.Version, shortRev(i.Commit)) {
		c := shortRev(i.Commit)
		if i.Modified {
			c += "-dirty"
		}
		extra = append(extra, c)
	}
	if i.Go != "" {
		extra = append(extra, i.Go)
	}
	if len(extra) == 0 {
		return i.Version
	}
	return i.Version + " (" + strings.Join(extra, ", ") + ")"
}

// Current is this binary's build. ldflagsVersion is a package's own
// -X variable (e.g. daemon.Version), used when Version is unset; "dev"
// and "" count as unset.
func Current(ldflagsVersion string) Info {
	v := Version
	if unset(v) {
		v = ldflagsVersion
	}
	bi, _ := debug.ReadBuildInfo()
	return fromBuildInfo(bi, v)
}

// OfFile is the build of another Go binary (banger-agent, which cannot
// be asked without running it), read from the build information the Go
// linker embeds; the -X version is found in its recorded -ldflags.
func OfFile(path string) (Info, error) {
	bi, err := buildinfo.ReadFile(path)
	if err != nil {
		return Info{}, err
	}
	return fromBuildInfo(bi, ldflagsVersion(bi)), nil
}

func fromBuildInfo(bi *debug.BuildInfo, v string) Info {
	i := Info{Version: v, From: "ldflags"}
	if bi != nil {
		i.Go = bi.GoVersion
		for _, s := range bi.Settings {
			switch s.Key {
			case "vcs.revision":
				i.Commit = s.Value
			case "vcs.modified":
				i.Modified = s.Value == "true"
			case "vcs.time":
				i.Time = s.Value
			}
		}
	}
	switch {
	case !unset(i.Version):
	case bi != nil && bi.Main.Version != "" && bi.Main.Version != "(devel)":
		i.Version, i.From = bi.Main.Version, "module"
	case i.Commit != "":
		i.Version, i.From = "dev-"+shortRev(i.Commit), "vcs"
		if i.Modified {
			i.Version += "-dirty"
		}
	default:
		i.Version, i.From = "dev", "none"
	}
	return i
}

// ldflagsVersion finds a version variable's -X value in recorded -ldflags.
func ldflagsVersion(bi *debug.BuildInfo) string {
	for _, s := range bi.Settings {
		if s.Key != "-ldflags" {
			continue
		}
		fields := strings.Fields(s.Value)
		for _, name := range versionVars {
			for j, f := range fields {
				val, ok := strings.CutPrefix(f, name+"=")
				if !ok && f == "-X" && j+1 < len(fields) {
					val, ok = strings.CutPrefix(fields[j+1], name+"=")
				}
				if ok && !unset(val) {
					return strings.Trim(val, `'"`)
				}
			}
		}
	}
	return ""
}

func unset(v string) bool { return v == "" || v == "dev" }

func shortRev(r string) string { return r[:min(len(r), 12)] }
