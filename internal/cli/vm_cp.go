package cli

import (
	"archive/tar"
	"errors"
	"fmt"
	"io"
	"os"
	"path"
	"path/filepath"
	"strings"

	"github.com/spf13/cobra"

	agentclient "github.com/banger-dev/banger/internal/agent/client"
	"github.com/banger-dev/banger/internal/agent/proto"
	"github.com/banger-dev/banger/internal/api"
	"github.com/banger-dev/banger/internal/config"
	"github.com/banger-dev/banger/internal/hostcopy"
)

func newVMCpCmd(f *factory) *cobra.Command {
	return &cobra.Command{
		Use:   "cp SRC NAME:DST | NAME:SRC DST",
		Short: "Copy files and directories into or out of a running VM (through the agent, no sshd needed)",
		Long: `Copy a file or a directory between this machine and a running VM, as
docker cp does. It goes through banger's guest agent, so it works for
images without sshd too.

  - DST an existing directory: the copy goes into it, under SRC's name.
    Otherwise the copy becomes DST, whose parent directory must exist
    (nothing is created above it). A DST ending in / must be an existing
    directory. A directory is never copied onto a file.
  - A guest path without a leading / is relative to /root, as with scp.
    A local path with a colon in its first element is written ./a:b.
  - Modes and modification times are kept; files written in the guest are
    owned by root, files written here by you. Setuid, setgid and sticky
    bits are not kept.
  - Symlinks are copied as symlinks (whatever they point to), SRC itself
    included, and never followed: nothing outside SRC is read. Sockets,
    fifos and devices are skipped (named on stderr); hard links arrive as
    separate files.
  - "-" as the local side is a tar archive: on stdin (extracted into the
    guest directory DST) or on stdout (holding SRC under its own name).
  - What comes from the guest is untrusted: entries with absolute names,
    "..", names longer than 4096 bytes, hard links and special files are
    refused, and nothing is written through a symlink.

An interrupted or failed copy out of the guest can leave the part already
written; one into the guest likewise (the agent stops at the first error).
The byte count is shown on stderr while copying when it is a terminal.`,
		Example: "  banger vm cp ./src dev:/srv/           # → /srv/src in the guest\n" +
			"  banger vm cp dev:/var/log/syslog .      # → ./syslog\n" +
			"  banger vm cp dev:project ./project-copy # /root/project → ./project-copy\n" +
			"  tar -C dist -cf - . | banger vm cp - dev:/srv/www\n" +
			"  banger vm cp dev:/etc - | tar -tvf -",
		Args: func(cmd *cobra.Command, args []string) error {
			if len(args) != 2 {
				return usageError{fmt.Errorf("vm cp: expected SRC and DST, one of them NAME:PATH (see `banger vm cp --help`)")}
			}
			return nil
		},
		RunE: func(cmd *cobra.Command, args []string) error {
			src, dst := args[0], args[1]
			sName, sPath, sGuest := guestArg(src)
			dName, dPath, dGuest := guestArg(dst)
			switch {
			case sGuest && dGuest:
				return usageError{fmt.Errorf("vm cp: %s and %s are both in a VM; copy between VMs through this machine", src, dst)}
			case !sGuest && !dGuest:
				return usageError{fmt.Errorf("vm cp: neither %s nor %s is NAME:PATH, a path in a VM (see `banger vm cp --help`)", src, dst)}
			case dGuest:
				return copyIn(cmd, f, src, dName, dPath)
			default:
				return copyOut(cmd, f, sName, sPath, dst)
			}
		},
	}
}

// guestArg splits NAME:PATH. A local path containing a colon is told
// apart by a slash (or a leading dot) before the colon: ./a:b, /x/a:b.
func guestArg(s string) (name, p string, ok bool) {
	name, p, ok = strings.Cut(s, ":")
	if !ok || name == "" || strings.ContainsAny(name, "/") || strings.HasPrefix(name, ".") {
		return "", "", false
	}
	if !strings.HasPrefix(p, "/") {
		// path.Join drops a final / or /.: both say DST must be a directory.
		trail := strings.HasSuffix(p, "/") || strings.HasSuffix(p, "/.")
		p = path.Join("/root", p)
		if trail {
			p += "/"
		}
	}
	return name, p, true
}

// copyIn sends a local path (or a tar archive on stdin) into the guest.
func copyIn(cmd *cobra.Command, f *factory, src, name, guestPath string) error {
	p := api.CopyInParams{Name: name, Path: guestPath}
	var fill func(*agentclient.TarWriter) error
	prog := newCopyProgress(f.IO)
	var skipped []string
	if src == "-" {
		fill = func(tw *agentclient.TarWriter) error { return retar(tw, f.IO.In, prog.add) }
	} else {
		if _, err := os.Lstat(src); err != nil {
			if errors.Is(err, os.ErrNotExist) {
				return fmt.Errorf("%s: no such file or directory", src)
			}
			return err
		}
		p.Base = filepath.Base(filepath.Clean(src))
		if p.Base == "/" || p.Base == "." || p.Base == ".." {
			return usageError{fmt.Errorf("vm cp: name the file or directory to copy, not %s", src)}
		}
		fill = func(tw *agentclient.TarWriter) error {
			var err error
			skipped, err = hostcopy.Archive(tw, src, prog.add)
			return err
		}
	}
	conn, err := f.Client.VMCopyIn(cmd.Context(), p)
	if err != nil {
		return err
	}
	defer conn.Close()
	// The agent may refuse an entry before the archive is sent: its
	// result is read while sending.
	resc := make(chan error, 1)
	var res proto.CopyResult
	go func() { resc <- proto.ReadLine(conn, &res) }()
	fillErr, ioErr := agentclient.WriteArchive(conn, fill)
	if fillErr != nil {
		prog.done()
		return fillErr // closing the connection makes the agent drop the copy
	}
	rerr := <-resc
	prog.done()
	switch {
	case rerr == nil && res.Error != "":
		return fmt.Errorf("copy into %s:%s: %s", name, guestPath, escCell(res.Error))
	case rerr != nil && ioErr != nil:
		return fmt.Errorf("copy into %s:%s: %w", name, guestPath, ioErr)
	case rerr != nil:
		return fmt.Errorf("copy into %s:%s: the daemon closed the stream before the guest confirmed the copy (is the VM still running?)", name, guestPath)
	}
	noteSkipped(f.IO, skipped)
	prog.summary(fmt.Sprintf("%s:%s", name, guestPath), res.Entries, res.Bytes)
	return nil
}

// retar re-writes a tar archive from r (vm cp - NAME:DIR), naming
// entries as the agent expects (no leading ./).
func retar(tw *agentclient.TarWriter, r io.Reader, progress func(int64)) error {
	tr := tar.NewReader(r)
	for {
		h, err := tr.Next()
		if err == io.EOF {
			return nil
		}
		if err != nil {
			return fmt.Errorf("read the archive on stdin: %w", err)
		}
		h.Name = strings.TrimPrefix(h.Name, "./")
		if h.Name == "" || h.Name == "." {
			continue
		}
		if err := tw.WriteHeader(h); err != nil {
			return err
		}
		n, err := io.Copy(tw, tr)
		progress(n)
		if err != nil {
			return err
		}
	}
}

// copyOut brings a guest path here (or as a tar archive to stdout).
func copyOut(cmd *cobra.Command, f *factory, name, guestPath, dst string) error {
	base := path.Base(path.Clean(guestPath))
	each := func(h *tar.Header, r io.Reader) error { return nil }
	prog := newCopyProgress(f.IO)
	finish := func() error { return nil }
	if dst == "-" {
		tw := tar.NewWriter(f.IO.Out)
		each = func(h *tar.Header, r io.Reader) error {
			if err := tw.WriteHeader(h); err != nil {
				return err
			}
			n, err := io.Copy(tw, r)
			prog.add(n)
			return err
		}
		finish = tw.Close
	} else {
		if base == "/" {
			return usageError{fmt.Errorf("vm cp: name a file or directory below / to copy out")}
		}
		x, err := hostcopy.Target(dst, base)
		if err != nil {
			return err
		}
		defer x.Close()
		x.Progress = prog.add
		each, finish = x.Entry, x.Finish
	}
	conn, err := f.Client.VMCopyOut(cmd.Context(), api.CopyOutParams{Name: name, Path: guestPath})
	if err != nil {
		return err
	}
	defer conn.Close()
	tl, err := agentclient.ReadArchive(conn, each)
	prog.done()
	if err != nil {
		// The agent's words come from the guest: no control characters.
		return fmt.Errorf("copy from %s:%s: %s", name, guestPath, escCell(err.Error()))
	}
	if err := finish(); err != nil {
		return err
	}
	noteSkipped(f.IO, tl.Skipped)
	prog.summary(dst, tl.Entries, prog.n)
	return nil
}

func noteSkipped(ios *iostreams, skipped []string) {
	if len(skipped) > 0 {
		fmt.Fprintf(ios.Err, "banger: skipped (not a file, directory or symlink): %s\n", escCell(strings.Join(skipped, ", ")))
	}
}

// copyProgress shows the bytes copied on a terminal, at most a few times
// a second.
type copyProgress struct {
	ios    *iostreams
	tty    bool
	n      int64
	shown  int64
	active bool
}

func newCopyProgress(ios *iostreams) *copyProgress {
	return &copyProgress{ios: ios, tty: ios.isStderrTTY()}
}

func (p *copyProgress) add(n int64) {
	p.n += n
	if !p.tty || p.n-p.shown < 4<<20 {
		return
	}
	p.shown = p.n
	p.active = true
	fmt.Fprintf(p.ios.Err, "\r\033[Kcopying: %s", config.FormatSize(p.n))
}

func (p *copyProgress) done() {
	if p.active {
		fmt.Fprint(p.ios.Err, "\r\033[K")
		p.active = false
	}
}

func (p *copyProgress) summary(to string, entries, bytes int64) {
	if p.tty {
		fmt.Fprintf(p.ios.Err, "copied %d entries, %s to %s\n", entries, config.FormatSize(bytes), to)
	}
}
