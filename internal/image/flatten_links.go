package image

import (
	"archive/tar"
	"errors"
	"fmt"
	"io"
	"path"
	"strings"
)

// hardlink links name to an entry of the same layer when that entry is in
// the image; otherwise the link is resolved after all layers are read.
func (f *flattener) hardlink(st *layerState, hdr *tar.Header, name string) error {
	target, err := cleanEntryName(hdr.Linkname)
	if err != nil {
		return fmt.Errorf("hard link %q → %w", name, err)
	}
	for hops := 0; hops < 40; hops++ {
		if e := f.ents[target]; e != nil && e.layer == st.idx && e.kind == kFile && !e.deferred {
			if e.typ != tar.TypeReg && e.typ != tar.TypeSymlink && e.typ != tar.TypeFifo {
				break
			}
			f.ents[name] = &fentry{layer: st.idx, kind: kFile, typ: e.typ, mode: e.mode, link: e.link}
			return f.tw.WriteHeader(&tar.Header{Name: name, Typeflag: tar.TypeLink, Linkname: target, Format: tar.FormatPAX})
		}
		if next, ok := st.hiddenLinks[target]; ok {
			target = next
			continue
		}
		break
	}
	d := deferredLink{layer: st.idx, name: name, target: target, copyData: st.hiddenFiles[target], hdr: hdr}
	f.deferred = append(f.deferred, d)
	f.ents[name] = &fentry{layer: st.idx, kind: kFile, typ: tar.TypeReg, deferred: true}
	return nil
}

// finishDeferred writes hard links whose target was not in the image when
// they were read: targets an upper layer hid get their data copied from
// their own layer (read a second time), the rest link to what the image
// holds at that path once all layers are in.
func (f *flattener) finishDeferred(layers []Layer) error {
	copies := map[int]map[string][]string{} // layer → target → link names
	for _, d := range f.deferred {
		if d.copyData {
			if copies[d.layer] == nil {
				copies[d.layer] = map[string][]string{}
			}
			copies[d.layer][d.target] = append(copies[d.layer][d.target], d.name)
		}
	}
	for li, want := range copies {
		if err := f.copyHidden(layers[li], li, want); err != nil {
			return fmt.Errorf("layer %s: %w", layers[li].Name, err)
		}
	}
	for _, d := range f.deferred {
		if d.copyData {
			continue
		}
		e := f.ents[d.target]
		if e == nil || e.kind != kFile || e.typ == 0 {
			return fmt.Errorf("layer %s: hard link %q points to %q, which is not in the image: refused", layers[d.layer].Name, d.name, d.target)
		}
		if e.deferred {
			return fmt.Errorf("layer %s: hard link %q points to another unresolved link %q: refused", layers[d.layer].Name, d.name, d.target)
		}
		*f.ents[d.name] = fentry{layer: d.layer, kind: kFile, typ: e.typ, mode: e.mode, link: e.link}
		if err := f.tw.WriteHeader(&tar.Header{Name: d.name, Typeflag: tar.TypeLink, Linkname: d.target, Format: tar.FormatPAX}); err != nil {
			return err
		}
	}
	return nil
}

// copyHidden re-reads one layer and writes, for each wanted target, its
// data under the first link name and hard links for the others.
func (f *flattener) copyHidden(l Layer, li int, want map[string][]string) error {
	r, closer, err := l.Open(func(int64) {})
	if err != nil {
		return err
	}
	defer closer.Close()
	for len(want) > 0 {
		hdr, err := r.Next()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			return err
		}
		name, err := cleanEntryName(hdr.Name)
		if err != nil {
			return err
		}
		names, ok := want[name]
		if !ok || hdr.Typeflag != tar.TypeReg {
			continue
		}
		delete(want, name)
		first := names[0]
		h := *hdr
		h.Name, h.Typeflag = first, tar.TypeReg
		*f.ents[first] = fentry{layer: li, kind: kFile, typ: tar.TypeReg}
		st := &layerState{idx: li, opaque: map[string]bool{}}
		if err := f.emit(st, r, &h, first); err != nil {
			return err
		}
		for _, n := range names[1:] {
			*f.ents[n] = *f.ents[first]
			if err := f.tw.WriteHeader(&tar.Header{Name: n, Typeflag: tar.TypeLink, Linkname: first, Format: tar.FormatPAX}); err != nil {
				return err
			}
		}
	}
	for t, names := range want {
		return fmt.Errorf("hard link %q points to %q, which the layer does not hold: refused", names[0], t)
	}
	return nil
}

// detect records whether the image has an init and an sshd.
func (f *flattener) detect() {
	b := findBootFiles(func(p string) pathNode {
		e := f.ents[strings.TrimPrefix(p, "/")]
		if p == "/" {
			e = f.ents["."]
		}
		if e == nil || e.kind == kTomb || e.kind == kSkipped {
			return pathNode{exists: p == "/"}
		}
		return pathNode{exists: true, symlink: e.kind == kFile && e.typ == tar.TypeSymlink, link: e.link,
			exec: e.typ == tar.TypeReg && e.mode&0o111 != 0}
	})
	f.res.Init, f.res.InitTarget, f.res.HasSSHD = b.Init, b.InitTarget, b.HasSSHD
}

// cleanEntryName turns a tar name into a clean relative path, refusing
// absolute names, names that climb out of the root and names
// checkEntryPath refuses (too long, too deep, a whiteout as a directory).
func cleanEntryName(name string) (string, error) {
	if err := checkEntryPath(name); err != nil {
		return "", err
	}
	if strings.HasPrefix(name, "/") {
		return "", fmt.Errorf("entry %q: absolute path refused", name)
	}
	c := path.Clean(name)
	if c == ".." || strings.HasPrefix(c, "../") {
		return "", fmt.Errorf("entry %q: path escapes the image root, refused", name)
	}
	return c, nil
}

func parentOf(p string) string {
	d := path.Dir(p)
	if d == "/" {
		return "."
	}
	return d
}
