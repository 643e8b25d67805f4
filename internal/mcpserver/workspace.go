package mcpserver

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"

	"github.com/modelcontextprotocol/go-sdk/mcp"

	"github.com/banger-dev/banger/internal/agent/proto"
	"github.com/banger-dev/banger/internal/api"
	"github.com/banger-dev/banger/internal/workspace"
)

// Bounds of export_workspace's inline patch.
const (
	defaultMaxPatch = 1 << 20
	maxMaxPatch     = 8 << 20
)

// ExportInput is export_workspace's arguments.
type ExportInput struct {
	Sandbox    string `json:"sandbox" jsonschema:"the sandbox's name"`
	GuestPath  string `json:"guest_path,omitempty" jsonschema:"the workspace's path in the sandbox (default /root/repo, where create_sandbox puts it)"`
	Base       string `json:"base,omitempty" jsonschema:"a commit in the sandbox to diff against (default: the commit the import copied in)"`
	NameOnly   bool   `json:"name_only,omitempty" jsonschema:"list the changed paths instead of the patch"`
	OutputPath string `json:"output_path,omitempty" jsonschema:"write the patch to this file on this machine (replaced only when the export succeeds) instead of returning it; relative paths are from the directory banger mcp runs in"`
	MaxBytes   int    `json:"max_bytes,omitempty" jsonschema:"without output_path: return at most this many bytes of the patch; default 1048576, at most 8388608"`
}

// ExportOutput is export_workspace's result.
type ExportOutput struct {
	Patch     string `json:"patch,omitempty" jsonschema:"the patch (for git apply on a clean checkout of the base), or the changed paths with name_only"`
	Bytes     int64  `json:"bytes" jsonschema:"the patch's whole size; 0 when nothing changed"`
	Truncated bool   `json:"truncated,omitempty" jsonschema:"true when the patch was longer than max_bytes and was cut (use output_path for all of it)"`
	WrittenTo string `json:"written_to,omitempty" jsonschema:"the file the patch was written to, with output_path"`
}

func (t *tools) addWorkspaceTools(s *mcp.Server) {
	add(s, t.log, &mcp.Tool{Name: "export_workspace", Title: "Export a workspace's changes as a patch",
		Description: "Take everything changed in a sandbox's workspace since create_sandbox imported it — commits made in the sandbox, staged and unstaged edits, " +
			"new files git does not ignore, deletions — as one binary-safe patch for `git apply` on a clean checkout of the base. " +
			"Returns the patch, or writes it to output_path on this machine. The sandbox's repository is not changed."},
		t.export)
}

func (t *tools) export(ctx context.Context, req *mcp.CallToolRequest, in ExportInput) (ExportOutput, error) {
	var out ExportOutput
	limit, err := bounded("max_bytes", in.MaxBytes, defaultMaxPatch, maxMaxPatch)
	if err != nil {
		return out, err
	}
	if in.Sandbox == "" {
		return out, errors.New("sandbox: name the sandbox whose workspace to export")
	}
	if _, err := workspace.GuestPath(in.GuestPath); err != nil {
		return out, fmt.Errorf("guest_path: %w", err)
	}
	var w io.Writer
	var tmp *os.File
	inline := &headBuffer{max: limit}
	if in.OutputPath != "" {
		dst := t.hostPath(in.OutputPath)
		if tmp, err = os.CreateTemp(filepath.Dir(dst), "."+filepath.Base(dst)+".*"); err != nil {
			return out, fmt.Errorf("output_path: %w", err)
		}
		defer os.Remove(tmp.Name())
		defer tmp.Close()
		w, out.WrittenTo = tmp, dst
	} else {
		w = inline
	}
	conn, err := t.d.WorkspaceExport(ctx, api.WorkspaceExportParams{Name: in.Sandbox, GuestPath: in.GuestPath, Base: in.Base, NameOnly: in.NameOnly})
	if err != nil {
		return out, err
	}
	defer conn.Close()
	stop := context.AfterFunc(ctx, func() { conn.Close() })
	defer stop()
	stderr := newClipBuffer(8 << 10)
	st, err := proto.PumpExec(conn, nil, w, stderr, nil)
	switch {
	case err != nil && ctx.Err() != nil:
		return out, ctx.Err()
	case err != nil:
		return out, fmt.Errorf("lost the export stream (is the sandbox still running?): %w", err)
	case st.Error != "" || st.Code != 0:
		msg := strings.TrimSpace(strings.Join([]string{st.Error, stderr.String()}, "\n"))
		return out, fmt.Errorf("export from %s failed: %s", in.Sandbox, msg)
	}
	if tmp != nil {
		fi, err := tmp.Stat()
		if err == nil {
			out.Bytes, err = fi.Size(), tmp.Close()
		}
		if err != nil {
			return out, err
		}
		if err := os.Rename(tmp.Name(), out.WrittenTo); err != nil {
			return out, err
		}
		return out, nil
	}
	out.Patch, out.Truncated, out.Bytes = inline.b.String(), inline.cut, inline.n
	return out, nil
}
