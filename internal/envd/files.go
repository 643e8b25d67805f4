package envd

import (
	"archive/tar"
	"compress/gzip"
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"mime"
	"mime/multipart"
	"net/http"
	"os"
	"path"
	"strings"
	"time"

	"github.com/banger-dev/banger/internal/agent/client"
	"github.com/banger-dev/banger/internal/agent/proto"
)

// entry is envd.yaml's EntryInfo as /files answers it.
type entry struct {
	Path string `json:"path"`
	Name string `json:"name"`
	Type string `json:"type"`
}

// fileUser is who /files acts as: the username query parameter, else
// the sandbox's default user.
func fileUser(r *http.Request, g Guest) string {
	if u := r.URL.Query().Get("username"); u != "" {
		return u
	}
	return user(r.Header, g)
}

// envs answers the sandbox's environment: the image's.
func (s *Server) envs(w http.ResponseWriter, r *http.Request) {
	env := map[string]string{}
	for _, kv := range guestOf(r.Context()).Env {
		if k, v, ok := strings.Cut(kv, "="); ok {
			env[k] = v
		}
	}
	writeJSON(w, http.StatusOK, env)
}

// download sends one guest file (GET /files?path=&username=): a path
// relative to the user's home, as envd resolves it; a directory is 400.
func (s *Server) download(w http.ResponseWriter, r *http.Request) {
	g := guestOf(r.Context())
	p := r.URL.Query().Get("path")
	if p == "" {
		writeError(w, http.StatusBadRequest, "no path given: GET /files?path=FILE")
		return
	}
	res, err := g.fs(r.Context(), proto.FSParams{Action: proto.FSStat, Path: p, User: fileUser(r, g)})
	if err != nil {
		failFS(w, err)
		return
	}
	e := res.Entries[0]
	if e.Type == "dir" {
		writeError(w, http.StatusBadRequest, fmt.Sprintf("path '%s' is a directory", e.Path))
		return
	}
	st, _, err := g.Agent.Open(r.Context(), proto.OpCopyOut, proto.CopyOutParams{Path: e.Path})
	if err != nil {
		failFS(w, err)
		return
	}
	defer st.Close()
	context.AfterFunc(r.Context(), func() { st.Close() })
	sent := false
	_, err = client.ReadArchive(st, func(h *tar.Header, body io.Reader) error {
		if sent {
			return nil
		}
		sent = true
		if h.Typeflag == tar.TypeSymlink {
			return fmt.Errorf("path '%s' is a symlink to %s: download its target", e.Path, h.Linkname)
		}
		w.Header().Set("Content-Type", "application/octet-stream")
		w.Header().Set("Content-Disposition", mime.FormatMediaType("attachment", map[string]string{"filename": e.Name}))
		w.Header().Set("Content-Length", fmt.Sprint(h.Size))
		w.WriteHeader(http.StatusOK)
		_, err := io.CopyN(w, body, h.Size)
		return err
	})
	if err != nil && !sent {
		failFS(w, err)
	} else if err != nil {
		s.d.Log.Warn("envd download cut short", "sandbox", g.ID, "path", e.Path, "err", err)
	}
}

// upload writes one or many files (POST /files): multipart/form-data
// parts named by ?path= (one file) or each part's filename, or a raw
// application/octet-stream body to ?path=. Missing parent directories
// are created, owned by the user; an existing file is replaced. Each
// file is written into a fresh hidden directory beside it and renamed
// into place only when complete, so a failed or oversize upload leaves
// the guest as it was.
func (s *Server) upload(w http.ResponseWriter, r *http.Request) {
	g := guestOf(r.Context())
	if r.ContentLength > s.d.MaxUpload {
		tooLarge(w, s.d.MaxUpload)
		return
	}
	r.Body = http.MaxBytesReader(w, r.Body, s.d.MaxUpload)
	u := fileUser(r, g)
	target := r.URL.Query().Get("path")
	mt, params, _ := mime.ParseMediaType(r.Header.Get("Content-Type"))
	var out []entry
	switch mt {
	case "multipart/form-data":
		mr := multipart.NewReader(r.Body, params["boundary"])
		for {
			part, err := mr.NextPart()
			if errors.Is(err, io.EOF) {
				break
			}
			if err != nil {
				uploadFailed(w, s.d.MaxUpload, fmt.Errorf("read the multipart body: %w", err))
				return
			}
			if part.FormName() != "file" {
				continue
			}
			// ?path= names the first file; every other part (and the
			// first without it) is named by its filename.
			dest := target
			if dest == "" || len(out) > 0 {
				dest = partFileName(part)
			}
			if dest == "" {
				uploadFailed(w, s.d.MaxUpload, errors.New("a file part has no filename and no ?path= names it"))
				return
			}
			e, err := s.writeFile(r.Context(), g, u, dest, part)
			if err != nil {
				uploadFailed(w, s.d.MaxUpload, err)
				return
			}
			out = append(out, e)
		}
	case "application/octet-stream":
		if target == "" {
			writeError(w, http.StatusBadRequest, "an application/octet-stream upload needs ?path=")
			return
		}
		body := io.Reader(r.Body)
		switch enc := r.Header.Get("Content-Encoding"); enc {
		case "", "identity":
		case "gzip": // the SDK's files.write(…, {gzip: true})
			zr, err := gzip.NewReader(r.Body)
			if err != nil {
				uploadFailed(w, s.d.MaxUpload, fmt.Errorf("gzip body: %w", err))
				return
			}
			// The limit holds for what is written, not only what is sent.
			body = &capReader{r: zr, left: s.d.MaxUpload}
		default:
			writeError(w, http.StatusUnsupportedMediaType, "Content-Encoding "+enc+" is not supported: send gzip or identity")
			return
		}
		e, err := s.writeFile(r.Context(), g, u, target, body)
		if err != nil {
			uploadFailed(w, s.d.MaxUpload, err)
			return
		}
		out = append(out, e)
	default:
		writeError(w, http.StatusBadRequest, "POST /files takes multipart/form-data (field \"file\") or application/octet-stream, not "+mt)
		return
	}
	if len(out) == 0 {
		writeError(w, http.StatusBadRequest, "no file in the upload: send multipart parts named \"file\"")
		return
	}
	writeJSON(w, http.StatusOK, out)
}

// writeFile streams body to dest in the guest (see upload).
func (s *Server) writeFile(ctx context.Context, g Guest, u, dest string, body io.Reader) (entry, error) {
	res, err := g.fs(ctx, proto.FSParams{Action: proto.FSUser, User: u})
	if err != nil {
		return entry{}, err
	}
	if !path.IsAbs(dest) {
		dest = path.Join(res.Home, dest)
	}
	dest = path.Clean(dest)
	dir, name := path.Split(dest)
	if name == "" || name == "." || name == ".." {
		return entry{}, &fsErr{Code: proto.FSInvalid, Message: fmt.Sprintf("path '%s' names no file", dest)}
	}
	if _, err := g.fs(ctx, proto.FSParams{Action: proto.FSMkdir, Path: dir, User: u}); err != nil {
		var fe *fsErr
		if !errors.As(err, &fe) || fe.Code != proto.FSExists {
			return entry{}, err
		}
	}
	b := make([]byte, 8)
	rand.Read(b)
	tmp := path.Join(dir, proto.UploadDirPrefix+hex.EncodeToString(b))
	_, err = g.Agent.CopyIn(ctx, proto.CopyInParams{Dir: tmp, Fresh: true}, func(tw *client.TarWriter) error {
		return writeEntry(tw, name, res.UID, res.GID, body)
	})
	if err == nil {
		_, err = g.fs(ctx, proto.FSParams{Action: proto.FSMove, Path: path.Join(tmp, name), Dest: dest, User: u, Own: true})
	}
	// Only the empty (or, after a failure, partial) temporary directory
	// is left; it goes whatever happened.
	g.fs(context.WithoutCancel(ctx), proto.FSParams{Action: proto.FSRemove, Path: tmp})
	if err != nil {
		return entry{}, err
	}
	return entry{Path: dest, Name: name, Type: "file"}, nil
}

// writeEntry writes body as one tar entry. A tar header needs the size
// first and a multipart part has none, so the body is spooled to a
// temporary file of the daemon's (bounded by the upload limit), not
// held in memory.
func writeEntry(tw *client.TarWriter, name string, uid, gid uint32, body io.Reader) error {
	f, err := os.CreateTemp("", "banger-envd-upload-")
	if err != nil {
		return err
	}
	defer f.Close()
	os.Remove(f.Name())
	n, err := io.Copy(f, body)
	if err != nil {
		return err
	}
	if _, err := f.Seek(0, io.SeekStart); err != nil {
		return err
	}
	h := &tar.Header{Name: name, Typeflag: tar.TypeReg, Mode: 0o644, Size: n, Uid: int(uid), Gid: int(gid), ModTime: time.Now()}
	if err := tw.WriteHeader(h); err != nil {
		return err
	}
	_, err = io.Copy(tw, f)
	return err
}

// partFileName is a part's filename as sent: E2B's SDK sends the whole
// destination path there (multipart.Part.FileName keeps only its base).
func partFileName(p *multipart.Part) string {
	_, params, err := mime.ParseMediaType(p.Header.Get("Content-Disposition"))
	if err != nil {
		return ""
	}
	return params["filename"]
}

// capReader fails with *http.MaxBytesError past left bytes.
type capReader struct {
	r    io.Reader
	left int64
}

func (c *capReader) Read(p []byte) (int, error) {
	if c.left <= 0 {
		if n, _ := c.r.Read(make([]byte, 1)); n > 0 {
			return 0, &http.MaxBytesError{}
		}
	}
	if int64(len(p)) > c.left {
		p = p[:max(c.left, 1)]
	}
	n, err := c.r.Read(p)
	c.left -= int64(n)
	return n, err
}

func tooLarge(w http.ResponseWriter, limit int64) {
	writeError(w, http.StatusRequestEntityTooLarge, fmt.Sprintf("upload larger than the limit of %d bytes: send smaller files, one request each", limit))
}

func uploadFailed(w http.ResponseWriter, limit int64, err error) {
	var mbe *http.MaxBytesError
	if errors.As(err, &mbe) {
		tooLarge(w, limit)
		return
	}
	failFS(w, err)
}

// failFS answers an agent failure with the status envd uses.
func failFS(w http.ResponseWriter, err error) {
	var fe *fsErr
	var re *client.RequestError
	switch {
	case errors.As(err, &fe):
		writeError(w, fe.httpStatus(), fe.Message)
	case errors.As(err, &re) && strings.Contains(re.Message, "no such file"):
		writeError(w, http.StatusNotFound, re.Message)
	case errors.As(err, &re):
		writeError(w, http.StatusBadRequest, re.Message)
	default:
		writeError(w, http.StatusBadGateway, err.Error())
	}
}
