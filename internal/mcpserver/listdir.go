package mcpserver

import (
	"bytes"
	"context"
	"fmt"
	"math"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/modelcontextprotocol/go-sdk/mcp"

	"github.com/banger-dev/banger/internal/api"
)

// Bounds of list_directory.
const (
	defaultMaxEntries = 1000
	maxMaxEntries     = 20000
	maxListing        = 8 << 20 // bytes of find's output read
	listTimeout       = 2 * time.Minute
)

// ListDirInput is list_directory's arguments.
type ListDirInput struct {
	Sandbox    string `json:"sandbox" jsonschema:"the sandbox's name"`
	Path       string `json:"path" jsonschema:"the directory's path in the sandbox: absolute, or relative to /root"`
	MaxEntries int    `json:"max_entries,omitempty" jsonschema:"return at most this many entries (sorted by name); default 1000, at most 20000"`
}

// DirEntry is one entry of a directory.
type DirEntry struct {
	Name     string    `json:"name"`
	Type     string    `json:"type" jsonschema:"file, directory, symlink, fifo, socket, char-device or block-device"`
	Size     int64     `json:"size"`
	Mode     string    `json:"mode" jsonschema:"permission bits, octal"`
	Modified time.Time `json:"modified"`
	Target   string    `json:"target,omitempty" jsonschema:"a symlink's target"`
}

// ListDirOutput is list_directory's result.
type ListDirOutput struct {
	Path      string     `json:"path"`
	Entries   []DirEntry `json:"entries"`
	Truncated bool       `json:"truncated,omitempty" jsonschema:"true when the directory has more entries than were returned"`
}

// listArgv lists dir and its entries, one NUL-terminated field each:
// no name or link target can contain NUL, so any name parses. -H
// follows dir itself when it is a symlink, nothing below it. The
// guest's GNU find (findutils) does it; there is no shell, and dir is
// absolute, so it cannot be taken for an option.
func listArgv(dir string) []string {
	return []string{"find", "-H", dir, "-maxdepth", "1", "-printf", `%d\0%y\0%s\0%m\0%T@\0%l\0%f\0`}
}

// listFields is how many fields listArgv prints per entry.
const listFields = 7

var fileTypes = map[string]string{"f": "file", "d": "directory", "l": "symlink", "p": "fifo", "s": "socket",
	"c": "char-device", "b": "block-device"}

func (t *tools) listDir(ctx context.Context, req *mcp.CallToolRequest, in ListDirInput) (ListDirOutput, error) {
	var out ListDirOutput
	limit, err := bounded("max_entries", in.MaxEntries, defaultMaxEntries, maxMaxEntries)
	if err != nil {
		return out, err
	}
	p, err := guestPath(in.Path)
	if err != nil {
		return out, err
	}
	if in.Sandbox == "" {
		return out, fmt.Errorf("sandbox: name the sandbox to list in")
	}
	stdout, stderr := &headBuffer{max: maxListing}, newClipBuffer(4<<10)
	res, err := t.exec(ctx, api.ExecParams{Name: in.Sandbox, ExecRequest: api.ExecRequest{Argv: listArgv(p)}}, nil, stdout, stderr, listTimeout)
	if err != nil {
		return out, err
	}
	if res.Code != 0 {
		msg := strings.TrimSpace(stderr.String())
		if strings.Contains(msg, "printf") || res.Code == 127 {
			msg += " (list_directory needs GNU find in the sandbox; run_command with ls works too)"
		}
		return out, fmt.Errorf("list %s: %s", p, msg)
	}
	self, entries, err := parseListing(stdout.b.Bytes())
	if err != nil {
		return out, fmt.Errorf("list %s: %w", p, err)
	}
	if self.Type != "directory" {
		return out, fmt.Errorf("%s is a %s, not a directory (read_file reads files)", p, self.Type)
	}
	slices.SortFunc(entries, func(a, b DirEntry) int { return strings.Compare(a.Name, b.Name) })
	out = ListDirOutput{Path: p, Entries: entries, Truncated: stdout.cut}
	if len(entries) > limit {
		out.Entries, out.Truncated = entries[:limit], true
	}
	return out, nil
}

// parseListing splits listArgv's output into the directory itself (depth
// 0) and its entries. An entry cut by the output bound is dropped.
func parseListing(b []byte) (DirEntry, []DirEntry, error) {
	var self DirEntry
	var found bool
	entries := []DirEntry{}
	fields := bytes.Split(b, []byte{0})
	fields = fields[:len(fields)-1] // what follows the last NUL: nothing, or a field cut short
	for len(fields) >= listFields {
		f := make([]string, listFields)
		for i := range f {
			f[i] = string(fields[i])
		}
		fields = fields[listFields:]
		size, err1 := strconv.ParseInt(f[2], 10, 64)
		mode, err2 := strconv.ParseUint(f[3], 8, 32)
		mtime, err3 := strconv.ParseFloat(f[4], 64)
		if err1 != nil || err2 != nil || err3 != nil {
			return self, nil, fmt.Errorf("unexpected output from find: %q", strings.Join(f, " "))
		}
		sec, frac := math.Modf(mtime)
		e := DirEntry{Name: f[6], Type: fileTypes[f[1]], Size: size, Mode: fmt.Sprintf("%04o", mode),
			Modified: time.Unix(int64(sec), int64(frac*1e9)).UTC(), Target: f[5]}
		if e.Type == "" {
			e.Type = "unknown"
		}
		if f[0] == "0" {
			self, found = e, true
			continue
		}
		entries = append(entries, e)
	}
	if !found {
		return self, nil, fmt.Errorf("find printed nothing for the directory itself")
	}
	return self, entries, nil
}

// headBuffer keeps the first max bytes written, notes a cut and counts
// every byte.
type headBuffer struct {
	b   bytes.Buffer
	max int
	cut bool
	n   int64
}

func (h *headBuffer) Write(p []byte) (int, error) {
	h.n += int64(len(p))
	if room := h.max - h.b.Len(); room < len(p) {
		h.cut = true
		h.b.Write(p[:max(room, 0)])
		return len(p), nil
	}
	return h.b.Write(p)
}
