package agent

import (
	"errors"
	"fmt"
	"path"
	"strings"

	"golang.org/x/sys/unix"
)

// maxOpenDirs bounds the directory descriptor cache; archives list a
// directory's entries together, so a small cache hits almost always.
const maxOpenDirs = 128

// dirCache holds open directory fds by path relative to the extraction
// root (""). Each was opened with O_NOFOLLOW from its parent's fd, so a
// path resolved through it never crosses a symlink. An fd being used (got
// and not yet put back) is never evicted: its number cannot be reused for
// another directory while a file is created through it.
type dirCache struct {
	dirs map[string]*openDir
}

type openDir struct {
	fd   int
	refs int
}

func newDirCache(rootFD int) *dirCache {
	return &dirCache{dirs: map[string]*openDir{"": {fd: rootFD, refs: 1}}}
}

// root is the extraction root's fd, valid until closeAll.
func (c *dirCache) root() int {
	return c.dirs[""].fd
}

// get returns the fd of directory rel, creating missing directories on
// the way; the caller puts it back when done with it.
func (c *dirCache) get(rel string) (int, error) {
	d, err := c.open(rel)
	if err != nil {
		return -1, err
	}
	d.refs++
	return d.fd, nil
}

func (c *dirCache) put(rel string) {
	if d, ok := c.dirs[rel]; ok {
		d.refs--
	}
}

// open resolves rel one component at a time.
func (c *dirCache) open(rel string) (*openDir, error) {
	if d, ok := c.dirs[rel]; ok {
		return d, nil
	}
	pdir, base := path.Split(rel)
	p, err := c.open(strings.TrimSuffix(pdir, "/"))
	if err != nil {
		return nil, err
	}
	openAt := func() (int, error) {
		return unix.Openat(p.fd, base, unix.O_RDONLY|unix.O_DIRECTORY|unix.O_NOFOLLOW|unix.O_CLOEXEC, 0)
	}
	fd, err := openAt()
	if errors.Is(err, unix.ENOENT) {
		if err := unix.Mkdirat(p.fd, base, 0o755); err != nil && !errors.Is(err, unix.EEXIST) {
			return nil, err
		}
		fd, err = openAt()
	}
	if errors.Is(err, unix.ELOOP) || errors.Is(err, unix.ENOTDIR) {
		return nil, fmt.Errorf("refusing to write through %q: it is not a directory (a symlink or a file)", rel)
	}
	if err != nil {
		return nil, err
	}
	// p's fd has served; evicting it now is safe.
	if len(c.dirs) >= maxOpenDirs {
		c.evict()
	}
	d := &openDir{fd: fd}
	c.dirs[rel] = d
	return d, nil
}

// evict closes every fd nobody holds (the root's is always held).
func (c *dirCache) evict() {
	for rel, d := range c.dirs {
		if d.refs == 0 {
			unix.Close(d.fd)
			delete(c.dirs, rel)
		}
	}
}

// closeAll closes every fd, the root's included.
func (c *dirCache) closeAll() {
	for rel, d := range c.dirs {
		unix.Close(d.fd)
		delete(c.dirs, rel)
	}
}
