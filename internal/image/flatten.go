package image

import (
	"archive/tar"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path"
	"strings"
)

// Flattening merges filesystem layers (OCI image layers, or an image plus a
// VM's overlay) into one ext4 image without unpacking anything on the host.
//
// Layers are read top-down, as go-containerregistry's mutate.Extract does:
// the first (uppermost) entry for a path wins, whiteouts and opaque
// directories hide what lies below, so each path's data is written exactly
// once (tar2ext4 cannot overwrite file data it has written). Flatten does
// not call mutate.Extract itself because Extract silently drops escaping
// links instead of refusing them, loses hard links whose target an upper
// layer replaced or deleted, and cannot say which entries it skipped.

// Whiteout spellings shared by OCI layers and the overlay walker.
const (
	whiteoutPrefix = ".wh."
	opaqueMarker   = ".wh..wh..opq"
)

// EntryReader is a stream of tar entries (*tar.Reader satisfies it).
type EntryReader interface {
	Next() (*tar.Header, error)
	Read(p []byte) (int, error)
}

// Layer is one filesystem layer to flatten.
type Layer struct {
	Name string // for messages: a digest, or "overlay of vm x"
	Size int64  // bytes Open's source will report through count (progress)
	// Open starts reading the layer; count receives source bytes as they
	// are consumed. It may be called twice (see deferred hard links).
	Open func(count func(n int64)) (EntryReader, io.Closer, error)
}

// FlattenOptions bound and observe a flatten.
type FlattenOptions struct {
	// MaxBytes caps the sum of all entries' sizes (decompression-bomb
	// guard); default maxImageSize.
	MaxBytes int64
	// MaxEntries caps the number of entries; default 4 Mi.
	MaxEntries int
	// KeepDevices writes device nodes (for promoting banger's own
	// images); otherwise they are skipped with a note, as a VM gets its
	// /dev from devtmpfs and an untrusted image has no business with them.
	KeepDevices bool
	Progress    func(done, total int64) // may be nil; called often
	Note        func(msg string)        // may be nil
}

// FlattenResult describes the flattened filesystem.
type FlattenResult struct {
	Entries int
	Bytes   int64
	// Init is "/sbin/init" when it resolves to an executable file in the
	// image, InitTarget the file it resolves to.
	Init, InitTarget string
	HasSSHD          bool
	SkippedDevices   int
}

// fentry is what the flattener knows about one path.
type fentry struct {
	layer    int
	kind     entryKind
	typ      byte   // tar type of a file entry
	mode     int64  // permission bits (of the link target for hard links)
	link     string // symlink target
	deferred bool   // reserved; written after all layers
}

type entryKind uint8

const (
	kImplicit entryKind = iota // a parent directory no layer has described yet
	kDir
	kFile    // any non-directory that is in the image
	kTomb    // deleted by a whiteout
	kSkipped // a device node left out; still hides lower layers
)

type deferredLink struct {
	layer        int
	name, target string // target: a path in this layer's namespace
	copyData     bool   // target's data is hidden: copy it, not link to it
	hdr          *tar.Header
}

type flattener struct {
	ctx       context.Context
	opts      FlattenOptions
	tw        *tar.Writer
	ents      map[string]*fentry
	opaque    map[string]bool // directories opaqued by an upper layer
	deferred  []deferredLink
	res       FlattenResult
	done      int64
	total     int64
	devNotes  []string
	xattrNote bool
}

// Flatten writes the merged layers (lowest first) as ext4 into out, which
// must be empty. On error out holds garbage; the caller removes it.
func Flatten(ctx context.Context, layers []Layer, out *os.File, opts FlattenOptions) (FlattenResult, error) {
	if opts.MaxBytes <= 0 {
		opts.MaxBytes = maxImageSize
	}
	if opts.MaxEntries <= 0 {
		opts.MaxEntries = 4 << 20
	}
	pr, pw := io.Pipe()
	convErr := make(chan error, 1)
	go func() {
		err := convertSafe(pr, out)
		pr.CloseWithError(err) // unblocks the writer side if conversion failed
		convErr <- err
	}()
	f := &flattener{ctx: ctx, opts: opts, tw: tar.NewWriter(pw),
		ents: map[string]*fentry{".": {layer: len(layers), kind: kImplicit}}, opaque: map[string]bool{}}
	for _, l := range layers {
		f.total += l.Size
	}
	err := f.runSafe(layers)
	if err == nil {
		err = f.tw.Close()
	}
	pw.CloseWithError(err)
	cerr := <-convErr
	if err != nil {
		return f.res, err
	}
	if cerr != nil {
		return f.res, fmt.Errorf("write ext4: %w", cerr)
	}
	if err := fixInodeBitmapPadding(out, out); err != nil {
		return f.res, err
	}
	f.detect()
	return f.res, nil
}

// runSafe is run, with a panic (a reader bug hit by a hostile layer or
// disk) turned into an error so the pipe to the converter still closes.
func (f *flattener) runSafe(layers []Layer) (err error) {
	defer recoverInto(&err)
	return f.run(layers)
}

func (f *flattener) run(layers []Layer) error {
	for i := len(layers) - 1; i >= 0; i-- {
		if err := f.layer(i, layers[i]); err != nil {
			return fmt.Errorf("layer %s: %w", layers[i].Name, err)
		}
	}
	if err := f.finishDeferred(layers); err != nil {
		return err
	}
	if n := f.res.SkippedDevices; n > 0 {
		f.note(fmt.Sprintf("skipped %d device node(s) (%s): a VM's /dev comes from devtmpfs", n, strings.Join(f.devNotes, ", ")))
	}
	return nil
}

func (f *flattener) note(msg string) {
	if f.opts.Note != nil {
		f.opts.Note(msg)
	}
}

func (f *flattener) count(n int64) {
	f.done += n
	if f.opts.Progress != nil {
		f.opts.Progress(f.done, f.total)
	}
}

// layerState is what one layer's pass remembers about its own entries.
type layerState struct {
	idx         int
	opaque      map[string]bool   // opaque markers, effective below this layer
	hiddenLinks map[string]string // hidden hard links: name → target
	hiddenFiles map[string]bool   // hidden regular files
}

func (f *flattener) layer(i int, l Layer) error {
	r, closer, err := l.Open(f.count)
	if err != nil {
		return err
	}
	defer closer.Close()
	st := &layerState{idx: i, opaque: map[string]bool{}, hiddenLinks: map[string]string{}, hiddenFiles: map[string]bool{}}
	for {
		hdr, err := r.Next()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			return err
		}
		if err := f.entry(st, r, hdr); err != nil {
			return err
		}
	}
	for d := range st.opaque {
		f.opaque[d] = true
	}
	return nil
}

func (f *flattener) entry(st *layerState, r io.Reader, hdr *tar.Header) error {
	if err := f.ctx.Err(); err != nil {
		return err
	}
	f.res.Entries++
	f.res.Bytes += max(hdr.Size, 0)
	if f.res.Entries > f.opts.MaxEntries {
		return fmt.Errorf("more than %d entries: refused", f.opts.MaxEntries)
	}
	if f.res.Bytes > f.opts.MaxBytes {
		return fmt.Errorf("entry %q: contents exceed %d bytes in total (a decompression bomb?): refused", hdr.Name, f.opts.MaxBytes)
	}
	name, err := cleanEntryName(hdr.Name)
	if err != nil {
		return err
	}
	base := path.Base(name)
	switch {
	case base == opaqueMarker:
		// Visible when the marker itself would be: its directory is then
		// this layer's (or an upper one's) and hides lower contents.
		if hidden, err := f.hidden(name, st.idx, false); err != nil || hidden {
			return err
		}
		st.opaque[parentOf(name)] = true
		return nil
	case strings.HasPrefix(base, whiteoutPrefix):
		victim := path.Join(parentOf(name), strings.TrimPrefix(base, whiteoutPrefix))
		if b := path.Base(victim); b == "." || b == ".." || strings.TrimPrefix(base, whiteoutPrefix) == "" {
			return fmt.Errorf("entry %q: malformed whiteout, refused", hdr.Name)
		}
		if hidden, err := f.hidden(victim, st.idx, false); err != nil || hidden {
			return err
		}
		if f.ents[victim] == nil {
			f.ents[victim] = &fentry{layer: st.idx, kind: kTomb}
		}
		return nil
	}
	hidden, err := f.hidden(name, st.idx, hdr.Typeflag == tar.TypeDir)
	if err != nil {
		return err
	}
	if hidden {
		switch hdr.Typeflag {
		case tar.TypeReg:
			st.hiddenFiles[name] = true
		case tar.TypeLink:
			if t, err := cleanEntryName(hdr.Linkname); err == nil {
				st.hiddenLinks[name] = t
			}
		}
		return nil
	}
	return f.emit(st, r, hdr, name)
}

// hidden decides whether a lower layer's entry at p is shadowed by what
// upper layers put at p or above it, and refuses an entry written through
// a non-directory of its own layer (a symlink planted to redirect writes).
func (f *flattener) hidden(p string, layer int, isDir bool) (bool, error) {
	for a := parentOf(p); ; a = parentOf(a) {
		if e := f.ents[a]; e != nil {
			switch {
			case e.layer > layer && (e.kind == kTomb || e.kind == kFile || e.kind == kSkipped):
				return true, nil
			case e.layer == layer && (e.kind == kFile || e.kind == kSkipped):
				what := "a non-directory"
				if e.typ == tar.TypeSymlink {
					what = "a symlink"
				}
				return false, fmt.Errorf("entry %q: would be written through %s (%q) of the same layer, refused", p, what, a)
			}
		}
		if a != p && f.opaque[a] {
			return true, nil
		}
		if a == "." {
			break
		}
	}
	e := f.ents[p]
	switch {
	case e == nil:
		return false, nil
	case e.kind == kImplicit && isDir:
		return false, nil // describes a directory an upper layer only implied
	case e.layer == layer && e.kind == kTomb:
		return false, nil // a whiteout hides lower layers only
	}
	return true, nil
}

// emit writes one visible entry and records it.
func (f *flattener) emit(st *layerState, r io.Reader, hdr *tar.Header, name string) error {
	// Parents tar2ext4 will create implicitly are recorded so that lower
	// layers cannot replace them with files or symlinks.
	for a := parentOf(name); a != "."; a = parentOf(a) {
		e := f.ents[a]
		if e == nil {
			f.ents[a] = &fentry{layer: st.idx, kind: kImplicit}
			continue
		}
		if e.kind == kTomb && e.layer == st.idx {
			// Deleted and recreated in one layer: nothing below shows.
			e.kind = kDir
			st.opaque[a] = true
		}
	}
	out := &tar.Header{
		Name: name, Typeflag: hdr.Typeflag, Mode: hdr.Mode & 0o7777, Uid: hdr.Uid, Gid: hdr.Gid,
		ModTime: hdr.ModTime, AccessTime: hdr.AccessTime, ChangeTime: hdr.ChangeTime, Format: tar.FormatPAX,
	}
	if out.AccessTime.IsZero() {
		out.AccessTime = out.ModTime
	}
	if out.ChangeTime.IsZero() {
		out.ChangeTime = out.ModTime
	}
	for k, v := range hdr.PAXRecords {
		x, ok := strings.CutPrefix(k, "SCHILY.xattr.")
		if !ok {
			continue
		}
		if isOverlayXattr(x) {
			if !f.xattrNote {
				f.note("dropped overlayfs attributes (" + x + " on " + name + "): they would steer the guest's overlay root")
				f.xattrNote = true
			}
			continue
		}
		if out.PAXRecords == nil {
			out.PAXRecords = map[string]string{}
		}
		out.PAXRecords[k] = v
	}
	e := &fentry{layer: st.idx, kind: kFile, typ: hdr.Typeflag, mode: out.Mode}
	switch hdr.Typeflag {
	case tar.TypeDir:
		e.kind = kDir
	case tar.TypeReg:
		out.Typeflag, out.Size, e.typ = tar.TypeReg, hdr.Size, tar.TypeReg
	case tar.TypeSymlink:
		if len(hdr.Linkname) > maxPathLen {
			return fmt.Errorf("entry %q: symlink target of %d bytes is longer than PATH_MAX (%d), refused", name, len(hdr.Linkname), maxPathLen)
		}
		out.Linkname, e.link = hdr.Linkname, hdr.Linkname
	case tar.TypeFifo:
	case tar.TypeChar, tar.TypeBlock:
		if !f.opts.KeepDevices {
			f.ents[name] = &fentry{layer: st.idx, kind: kSkipped}
			f.res.SkippedDevices++
			if len(f.devNotes) < 3 {
				f.devNotes = append(f.devNotes, "/"+name)
			}
			return nil
		}
		out.Devmajor, out.Devminor = hdr.Devmajor, hdr.Devminor
	case tar.TypeLink:
		return f.hardlink(st, hdr, name)
	default:
		f.note(fmt.Sprintf("skipped %q: tar entry type %q is not a file", "/"+name, hdr.Typeflag))
		return nil
	}
	f.ents[name] = e
	if err := f.tw.WriteHeader(out); err != nil {
		return err
	}
	if out.Size > 0 {
		if _, err := io.CopyN(f.tw, r, out.Size); err != nil {
			return fmt.Errorf("entry %q: %w", name, err)
		}
	}
	return nil
}
