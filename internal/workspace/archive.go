package workspace

import (
	"archive/tar"
	"bufio"
	"context"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"

	"github.com/banger-dev/banger/internal/agent/proto"
)

// Sink receives the archive: a tar writer (the agent client's counts the
// entries for its trailer).
type Sink interface {
	WriteHeader(*tar.Header) error
	Write([]byte) (int, error)
}

// Archive writes everything the plan copies: each repository's files,
// then its .git (history pack, HEAD, branch, config, base tree). tmp is a
// host directory for the packs (removed by the caller).
func (p *Plan) Archive(ctx context.Context, w Sink, tmp string) error {
	ctx, cancel := context.WithCancel(ctx)
	pack, wait := p.startPacks(ctx, tmp)
	// On return no pack is still being written into tmp.
	defer wait()
	defer cancel()
	for i := range p.Repos {
		r := &p.Repos[i]
		if err := writeCommitted(ctx, w, r); err != nil {
			return err
		}
		if err := writeUntracked(w, r); err != nil {
			return err
		}
		res := pack(i)
		if res.err != nil {
			return res.err
		}
		if err := writeGitDir(ctx, w, r, res); err != nil {
			return err
		}
	}
	return p.writeGitlinks(w)
}

// startPacks builds every repository's pack in the background, so that
// packing hides behind the streaming of the files. pack(i) waits for
// repository i's; wait waits for all.
func (p *Plan) startPacks(ctx context.Context, tmp string) (pack func(int) packResult, wait func()) {
	var wg sync.WaitGroup
	packs := make([]packResult, len(p.Repos))
	done := make([]chan struct{}, len(p.Repos))
	for i := range p.Repos {
		done[i] = make(chan struct{})
		wg.Go(func() {
			defer close(done[i])
			packs[i] = buildPack(ctx, &p.Repos[i], filepath.Join(tmp, strconv.Itoa(i)))
		})
	}
	return func(i int) packResult { <-done[i]; return packs[i] }, wg.Wait
}

// writeGitlinks adds the submodule entries of the superprojects' indexes.
// They come last: the submodule directories are complete by now, so the
// stat data the agent records for them is final.
func (p *Plan) writeGitlinks(w Sink) error {
	for _, r := range p.Repos {
		for _, f := range r.Files {
			if f.Mode != ModeSubmodule {
				continue
			}
			pax := gitPAX(r, f)
			pax[proto.PAXGitLink] = "1"
			if err := w.WriteHeader(&tar.Header{Name: f.Path, Typeflag: tar.TypeDir, Mode: 0o755, PAXRecords: pax}); err != nil {
				return err
			}
		}
	}
	return nil
}

// gitPAX are the records that put an entry into its repository's index.
func gitPAX(r Repo, f File) map[string]string {
	return map[string]string{proto.PAXGitOID: f.OID, proto.PAXGitRepo: r.Prefix}
}

// writeCommitted streams the repository's committed files from its
// object store (git cat-file --batch): the commit's content, whatever
// the working tree holds.
func writeCommitted(ctx context.Context, w Sink, r *Repo) error {
	var files []File
	for _, f := range r.Files {
		if !f.Untracked && f.Mode != ModeSubmodule {
			files = append(files, f)
		}
	}
	if len(files) == 0 {
		return nil
	}
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	cmd := (git{dir: r.Dir}).cmd(ctx, "cat-file", "--batch")
	stdin, err := cmd.StdinPipe()
	if err != nil {
		return err
	}
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		return err
	}
	var stderr strings.Builder
	cmd.Stderr = &stderr
	if err := cmd.Start(); err != nil {
		return fmt.Errorf("git cat-file: %w", err)
	}
	go func() {
		bw := bufio.NewWriter(stdin)
		for _, f := range files {
			bw.WriteString(f.OID + "\n")
		}
		bw.Flush()
		stdin.Close()
	}()
	err = copyBlobs(w, bufio.NewReaderSize(stdout, 1<<20), *r, files)
	if err != nil {
		cancel()
		cmd.Wait()
		if stderr.Len() > 0 {
			err = fmt.Errorf("%w (git: %s)", err, strings.TrimSpace(stderr.String()))
		}
		return err
	}
	return cmd.Wait()
}

// copyBlobs reads cat-file's answers, in request order, into the archive.
func copyBlobs(w Sink, br *bufio.Reader, r Repo, files []File) error {
	for _, f := range files {
		line, err := br.ReadString('\n')
		if err != nil {
			return fmt.Errorf("git cat-file: %w", err)
		}
		fields := strings.Fields(line)
		if len(fields) != 3 || fields[0] != f.OID || fields[1] != "blob" {
			return fmt.Errorf("git cat-file: unexpected answer %q for %s", strings.TrimSpace(line), f.Path)
		}
		size, err := strconv.ParseInt(fields[2], 10, 64)
		if err != nil {
			return fmt.Errorf("git cat-file: bad size in %q", line)
		}
		if err := writeBlob(w, br, r, f, size); err != nil {
			return err
		}
		if b, err := br.ReadByte(); err != nil || b != '\n' {
			return fmt.Errorf("git cat-file: missing separator after %s", f.Path)
		}
	}
	return nil
}

func writeBlob(w Sink, br *bufio.Reader, r Repo, f File, size int64) error {
	h := &tar.Header{Name: f.Path, PAXRecords: gitPAX(r, f)}
	if f.Mode == ModeSymlink {
		target := make([]byte, size)
		if _, err := io.ReadFull(br, target); err != nil {
			return err
		}
		h.Typeflag, h.Linkname = tar.TypeSymlink, string(target)
		return w.WriteHeader(h)
	}
	h.Typeflag, h.Size, h.Mode = tar.TypeReg, size, 0o644
	if f.Mode == ModeExec {
		h.Mode = 0o755
	}
	if err := w.WriteHeader(h); err != nil {
		return err
	}
	_, err := io.CopyN(w, br, size)
	return err
}

// writeUntracked copies the untracked files from the working tree as
// they are now, with their modes and times.
func writeUntracked(w Sink, r *Repo) error {
	for _, f := range r.Files {
		if !f.Untracked {
			continue
		}
		p := filepath.Join(r.Dir, filepath.FromSlash(strings.TrimPrefix(f.Path, withSlash(r.Prefix))))
		if err := writeHostFile(w, p, f.Path, f.Mode == ModeSymlink, -1); err != nil {
			return fmt.Errorf("untracked file %s: %w", f.Path, err)
		}
	}
	return nil
}

// writeHostFile adds one host file or symlink (never followed) as name.
// mode < 0 keeps the file's permission bits.
func writeHostFile(w Sink, hostPath, name string, symlink bool, mode int64) error {
	if symlink {
		st, err := os.Lstat(hostPath)
		if err != nil {
			return err
		}
		target, err := os.Readlink(hostPath)
		if err != nil {
			return err
		}
		return w.WriteHeader(&tar.Header{Name: name, Typeflag: tar.TypeSymlink, Linkname: target, ModTime: st.ModTime()})
	}
	f, err := os.OpenFile(hostPath, os.O_RDONLY|syscall.O_NOFOLLOW, 0)
	if err != nil {
		return err
	}
	defer f.Close()
	st, err := f.Stat()
	if err != nil {
		return err
	}
	if !st.Mode().IsRegular() {
		return fmt.Errorf("no longer a regular file")
	}
	if mode < 0 {
		mode = int64(st.Mode().Perm())
	}
	h := &tar.Header{Name: name, Typeflag: tar.TypeReg, Mode: mode, Size: st.Size(), ModTime: st.ModTime()}
	if err := w.WriteHeader(h); err != nil {
		return err
	}
	n, err := io.CopyN(w, f, st.Size())
	if err == io.EOF {
		return fmt.Errorf("shrank from %d to %d bytes while being copied", st.Size(), n)
	}
	return err
}
