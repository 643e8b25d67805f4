package workspace

import (
	"archive/tar"
	"context"
	"fmt"
	"io/fs"
	"os"
	"path"
	"path/filepath"
	"strings"

	"github.com/banger-dev/banger/internal/config"
)

// Sync is what a VM start copies into the guest: the [[file_sync]]
// entries and the host user's git identity. Its archive is rooted at
// the guest's "/" (entries are root/... and etc/gitconfig).
type Sync struct {
	entries  []syncEntry
	identity string // /etc/gitconfig contents, "" for none
	// Warnings are entries skipped because their host path is missing
	// or unreadable.
	Warnings []string
}

type syncEntry struct {
	host, guest string // host path (symlinks resolved); guest path relative to /
	info        os.FileInfo
	mode        uint32 // 0 = default
}

// NewSync resolves the entries against the host (home expands ~/) and
// reads the git identity. Missing host paths become warnings.
func NewSync(ctx context.Context, entries []config.FileSync, home string) *Sync {
	s := &Sync{identity: gitIdentity(ctx)}
	for _, e := range entries {
		hp := e.HostPath(home)
		real, err := filepath.EvalSymlinks(hp)
		var st os.FileInfo
		if err == nil {
			st, err = os.Stat(real)
		}
		if err != nil {
			s.Warnings = append(s.Warnings, fmt.Sprintf("%s skipped: %v", e.Host, shortErr(err)))
			continue
		}
		s.entries = append(s.entries, syncEntry{host: real, guest: strings.TrimPrefix(e.GuestPath(), "/"), info: st, mode: e.Mode.Perm})
	}
	return s
}

func shortErr(err error) error {
	if pe, ok := err.(*fs.PathError); ok {
		return pe.Err
	}
	return err
}

// Empty reports whether there is nothing to copy.
func (s *Sync) Empty() bool { return len(s.entries) == 0 && s.identity == "" }

// Archive writes the files: a file gets the entry's mode (default 0600:
// these are usually credentials); a directory is copied recursively with
// its files' own modes, symlinks inside it copied as symlinks.
func (s *Sync) Archive(w Sink) error {
	if s.identity != "" {
		if err := writeBytes(w, "etc/gitconfig", []byte(s.identity), 0o644); err != nil {
			return err
		}
	}
	for _, e := range s.entries {
		var err error
		if e.info.IsDir() {
			err = syncDir(w, e)
		} else {
			mode := int64(0o600)
			if e.mode != 0 {
				mode = int64(e.mode)
			}
			err = writeHostFile(w, e.host, e.guest, false, mode)
		}
		if err != nil {
			return fmt.Errorf("file_sync %s: %w", e.host, err)
		}
	}
	return nil
}

func syncDir(w Sink, e syncEntry) error {
	return filepath.WalkDir(e.host, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel, err := filepath.Rel(e.host, p)
		if err != nil {
			return err
		}
		name := path.Join(e.guest, filepath.ToSlash(rel))
		info, err := d.Info()
		if err != nil {
			return err
		}
		switch {
		case d.IsDir():
			mode := int64(info.Mode().Perm())
			if p == e.host && e.mode != 0 {
				mode = int64(e.mode)
			}
			return w.WriteHeader(&tar.Header{Name: name + "/", Typeflag: tar.TypeDir, Mode: mode})
		case d.Type()&fs.ModeSymlink != 0:
			return writeHostFile(w, p, name, true, -1)
		case d.Type().IsRegular():
			return writeHostFile(w, p, name, false, -1)
		}
		return nil // sockets, fifos, devices: not copied
	})
}

// gitIdentity renders the host user's git user.name and user.email as
// a system gitconfig for the guest, so commits made there carry them;
// a ~/.gitconfig the user syncs still takes precedence.
func gitIdentity(ctx context.Context) string {
	g := git{dir: "/"}
	var b strings.Builder
	for _, key := range []string{"name", "email"} {
		v, err := g.line(ctx, "config", "--get", "user."+key)
		if err != nil || v == "" || strings.ContainsAny(v, "\x00\n") {
			continue
		}
		fmt.Fprintf(&b, "\t%s = %s\n", key, quoteConfig(v))
	}
	if b.Len() == 0 {
		return ""
	}
	return "# Written by banger at every VM start: the host user's git identity.\n[user]\n" + b.String()
}

// quoteConfig quotes a git config value.
func quoteConfig(v string) string {
	r := strings.NewReplacer(`\`, `\\`, `"`, `\"`, "\t", `\t`)
	return `"` + r.Replace(v) + `"`
}
