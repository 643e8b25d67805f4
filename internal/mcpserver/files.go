package mcpserver

import (
	"archive/tar"
	"bytes"
	"context"
	"encoding/base64"
	"errors"
	"fmt"
	"io"
	"path"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/modelcontextprotocol/go-sdk/mcp"

	agentclient "github.com/banger-dev/banger/internal/agent/client"
	"github.com/banger-dev/banger/internal/agent/proto"
	"github.com/banger-dev/banger/internal/api"
)

// Bounds of read_file and write_file.
const (
	defaultMaxRead = 256 << 10
	maxMaxRead     = 4 << 20
	maxWrite       = 8 << 20 // base64 of it stays under the SDK's 16 MiB message bound
	maxSymlinks    = 8
)

// ReadInput is read_file's arguments.
type ReadInput struct {
	Sandbox  string `json:"sandbox" jsonschema:"the sandbox's name"`
	Path     string `json:"path" jsonschema:"the file's path in the sandbox: absolute, or relative to /root"`
	MaxBytes int    `json:"max_bytes,omitempty" jsonschema:"return at most this many bytes from the file's start; default 262144, at most 4194304"`
}

// ReadOutput is read_file's result.
type ReadOutput struct {
	Path      string `json:"path" jsonschema:"the file read (the target, when path was a symlink)"`
	Content   string `json:"content"`
	Encoding  string `json:"encoding" jsonschema:"utf-8, or base64 when the file is not text"`
	Size      int64  `json:"size" jsonschema:"the file's whole size in bytes"`
	Truncated bool   `json:"truncated,omitempty" jsonschema:"true when only the first max_bytes were returned"`
	Mode      string `json:"mode" jsonschema:"permission bits, octal"`
}

// WriteInput is write_file's arguments.
type WriteInput struct {
	Sandbox       string `json:"sandbox" jsonschema:"the sandbox's name"`
	Path          string `json:"path" jsonschema:"the file's path in the sandbox: absolute, or relative to /root; an existing file is replaced"`
	Content       string `json:"content" jsonschema:"the file's whole content"`
	Encoding      string `json:"encoding,omitempty" jsonschema:"utf-8 (default) or base64 for binary content"`
	Mode          string `json:"mode,omitempty" jsonschema:"permission bits, octal (default 0644)"`
	CreateParents bool   `json:"create_parents,omitempty" jsonschema:"create missing parent directories (default: the parent must exist)"`
}

// WriteOutput is write_file's result.
type WriteOutput struct {
	Path  string `json:"path"`
	Bytes int64  `json:"bytes"`
}

func (t *tools) addFileTools(s *mcp.Server) {
	add(s, t.log, &mcp.Tool{Name: "read_file", Title: "Read a file in a sandbox",
		Description: "Read a file of a running sandbox through banger's guest agent. Text comes back as is, other content base64-encoded; " +
			"a file longer than max_bytes is cut and marked truncated. Symlinks are followed; a directory is an error (use list_directory).",
		Annotations: &mcp.ToolAnnotations{ReadOnlyHint: true}},
		t.read)
	add(s, t.log, &mcp.Tool{Name: "write_file", Title: "Write a file in a sandbox",
		Description: "Write a whole file into a running sandbox through banger's guest agent (replacing an existing file; never written through a symlink). " +
			"The parent directory must exist unless create_parents is true. Files are owned by root."},
		t.write)
	add(s, t.log, &mcp.Tool{Name: "list_directory", Title: "List a directory in a sandbox",
		Description: "List the entries of a directory in a running sandbox: name, type, size, mode, modification time, and a symlink's target.",
		Annotations: &mcp.ToolAnnotations{ReadOnlyHint: true}},
		t.listDir)
}

// guestPath makes a sandbox path absolute (relative ones are below
// /root, as vm cp takes them) and clean.
func guestPath(p string) (string, error) {
	if p == "" {
		return "", errors.New("path: give a path in the sandbox")
	}
	if !path.IsAbs(p) {
		p = path.Join("/root", p)
	}
	return path.Clean(p), nil
}

// errEnough stops a copy out once read_file has what it returns.
var errEnough = errors.New("enough")

func (t *tools) read(ctx context.Context, req *mcp.CallToolRequest, in ReadInput) (ReadOutput, error) {
	var out ReadOutput
	limit, err := bounded("max_bytes", in.MaxBytes, defaultMaxRead, maxMaxRead)
	if err != nil {
		return out, err
	}
	p, err := guestPath(in.Path)
	if err != nil {
		return out, err
	}
	for range maxSymlinks {
		var target string
		target, out, err = t.readOnce(ctx, in.Sandbox, p, limit)
		if err != nil {
			return out, err
		}
		if target == "" {
			return out, nil
		}
		if !path.IsAbs(target) {
			target = path.Join(path.Dir(p), target)
		}
		p = path.Clean(target)
	}
	return out, fmt.Errorf("%s: more than %d symlinks in a row", in.Path, maxSymlinks)
}

// readOnce reads p without following it: a symlink's target is returned
// for the caller to follow.
func (t *tools) readOnce(ctx context.Context, name, p string, limit int) (string, ReadOutput, error) {
	out := ReadOutput{Path: p}
	conn, err := t.d.VMCopyOut(ctx, api.CopyOutParams{Name: name, Path: p})
	if err != nil {
		return "", out, err
	}
	defer conn.Close()
	stop := context.AfterFunc(ctx, func() { conn.Close() })
	defer stop()
	var target string
	var data []byte
	_, err = agentclient.ReadArchive(conn, func(h *tar.Header, r io.Reader) error {
		switch h.Typeflag {
		case tar.TypeSymlink:
			target = h.Linkname
		case tar.TypeDir:
			return fmt.Errorf("%s is a directory (list_directory lists it)", p)
		case tar.TypeReg:
			out.Size, out.Mode = h.Size, fmt.Sprintf("%04o", h.Mode&0o7777)
			var b bytes.Buffer
			if _, err := io.CopyN(&b, r, int64(limit)); err != nil && err != io.EOF {
				return err
			}
			data, out.Truncated = b.Bytes(), h.Size > int64(limit)
		default:
			return fmt.Errorf("%s is not a regular file", p)
		}
		return errEnough // the first entry is the path itself
	})
	if err != nil && !errors.Is(err, errEnough) {
		return "", out, err
	}
	if ctx.Err() != nil {
		return "", out, ctx.Err()
	}
	if target == "" && out.Mode == "" {
		return "", out, fmt.Errorf("%s: the guest sent nothing for it", p)
	}
	out.Content, out.Encoding = textOrBase64(data, out.Truncated)
	return target, out, nil
}

// textOrBase64 is data as text when it is UTF-8 (a rune cut at a
// truncation's end excepted), else as base64.
func textOrBase64(data []byte, truncated bool) (string, string) {
	check := data
	if truncated {
		for i := 0; i < utf8.UTFMax && len(check) > 0 && !utf8.Valid(check); i++ {
			check = check[:len(check)-1]
		}
	}
	if utf8.Valid(check) && bytes.IndexByte(check, 0) < 0 {
		return string(check), "utf-8"
	}
	return base64.StdEncoding.EncodeToString(data), "base64"
}

func (t *tools) write(ctx context.Context, req *mcp.CallToolRequest, in WriteInput) (WriteOutput, error) {
	var out WriteOutput
	p, err := guestPath(in.Path)
	if err != nil {
		return out, err
	}
	dir, base := path.Dir(p), path.Base(p)
	if p == "/" {
		return out, fmt.Errorf("path: %s names no file", in.Path)
	}
	data := []byte(in.Content)
	switch in.Encoding {
	case "", "utf-8", "utf8":
	case "base64":
		if data, err = base64.StdEncoding.DecodeString(in.Content); err != nil {
			return out, fmt.Errorf("content is not valid base64: %w", err)
		}
	default:
		return out, fmt.Errorf("encoding: %q is neither utf-8 nor base64", in.Encoding)
	}
	if len(data) > maxWrite {
		return out, fmt.Errorf("content: %d bytes is more than write_file takes (%d); split the file or copy it with banger vm cp", len(data), maxWrite)
	}
	mode := int64(0o644)
	if in.Mode != "" {
		if mode, err = strconv.ParseInt(in.Mode, 8, 32); err != nil || mode < 0 || mode > 0o777 {
			return out, fmt.Errorf("mode: %q is not octal permission bits such as 0644 or 0755", in.Mode)
		}
	}
	if in.Sandbox == "" {
		return out, errors.New("sandbox: name the sandbox to write in")
	}
	if in.CreateParents {
		// No agent operation makes directories: a fixed argv, no shell.
		stderr := newClipBuffer(4 << 10)
		res, err := t.exec(ctx, api.ExecParams{Name: in.Sandbox, ExecRequest: api.ExecRequest{Argv: []string{"mkdir", "-p", "--", dir}}},
			nil, io.Discard, stderr, time.Minute)
		if err == nil && res.Code != 0 {
			err = fmt.Errorf("create %s: %s", dir, strings.TrimSpace(stderr.String()))
		}
		if err != nil {
			return out, err
		}
	}
	// Into an existing directory (dir), as the entry base: the agent
	// replaces a file there and refuses to write through a symlink.
	res, err := t.copyIn(ctx, api.CopyInParams{Name: in.Sandbox, Path: dir}, &tar.Header{Typeflag: tar.TypeReg, Name: base,
		Mode: mode, Size: int64(len(data)), ModTime: time.Now()}, data)
	if err != nil {
		return out, err
	}
	return WriteOutput{Path: p, Bytes: res.Bytes}, nil
}

// copyIn sends one entry to the guest and returns the agent's account.
func (t *tools) copyIn(ctx context.Context, p api.CopyInParams, h *tar.Header, data []byte) (proto.CopyResult, error) {
	var res proto.CopyResult
	conn, err := t.d.VMCopyIn(ctx, p)
	if err != nil {
		return res, err
	}
	defer conn.Close()
	stop := context.AfterFunc(ctx, func() { conn.Close() })
	defer stop()
	// The agent may refuse before the archive is sent: its result is
	// read while sending.
	resc := make(chan error, 1)
	go func() { resc <- proto.ReadLine(conn, &res) }()
	_, ioErr := agentclient.WriteArchive(conn, func(tw *agentclient.TarWriter) error {
		if err := tw.WriteHeader(h); err != nil {
			return err
		}
		_, err := tw.Write(data)
		return err
	})
	rerr := <-resc
	switch {
	case rerr == nil && res.Error != "":
		return res, fmt.Errorf("write %s/%s: %s", p.Path, h.Name, res.Error)
	case rerr != nil && ctx.Err() != nil:
		return res, ctx.Err()
	case rerr != nil && ioErr != nil:
		return res, fmt.Errorf("write %s/%s: %w", p.Path, h.Name, ioErr)
	case rerr != nil:
		return res, fmt.Errorf("write %s/%s: the stream ended before the guest confirmed the write (is the sandbox still running?)", p.Path, h.Name)
	}
	return res, nil
}
