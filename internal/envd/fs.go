package envd

import (
	"context"
	"encoding/base64"
	"errors"
	"net/http"
	"strings"

	"connectrpc.com/connect"
	"google.golang.org/protobuf/types/known/timestamppb"

	"github.com/banger-dev/banger/internal/agent/proto"
	fspb "github.com/banger-dev/banger/proto/filesystem"
)

// user is who a request acts as: the Connect calls' `Authorization:
// Basic base64(user:)` (as E2B's SDK sends it), else the sandbox's
// default user (the image's, else root).
func user(h http.Header, g Guest) string {
	if auth, ok := strings.CutPrefix(h.Get("Authorization"), "Basic "); ok {
		if b, err := base64.StdEncoding.DecodeString(auth); err == nil {
			if name, _, _ := strings.Cut(string(b), ":"); name != "" {
				return name
			}
		}
	}
	return g.User
}

// fsErr is an fs op the agent refused.
type fsErr proto.FSError

func (e *fsErr) Error() string { return e.Message }

func (e *fsErr) connectCode() connect.Code {
	switch e.Code {
	case proto.FSNotFound:
		return connect.CodeNotFound
	case proto.FSExists:
		return connect.CodeAlreadyExists
	case proto.FSInvalid:
		return connect.CodeInvalidArgument
	case proto.FSDenied:
		return connect.CodePermissionDenied
	}
	return connect.CodeInternal
}

func (e *fsErr) httpStatus() int {
	switch e.Code {
	case proto.FSNotFound:
		return http.StatusNotFound
	case proto.FSInvalid, proto.FSExists:
		return http.StatusBadRequest
	case proto.FSDenied:
		return http.StatusForbidden
	}
	return http.StatusInternalServerError
}

// fs runs one fs op in the guest; a refusal is an *fsErr.
func (g Guest) fs(ctx context.Context, p proto.FSParams) (proto.FSResult, error) {
	var res proto.FSResult
	if err := g.Agent.Do(ctx, proto.OpFS, p, &res); err != nil {
		return res, err
	}
	if res.Err != nil {
		return res, (*fsErr)(res.Err)
	}
	return res, nil
}

// fsEntry runs an fs op that answers one entry.
func (g Guest) fsEntry(ctx context.Context, p proto.FSParams) (*fspb.EntryInfo, error) {
	res, err := g.fs(ctx, p)
	if err != nil {
		return nil, connectErr(err)
	}
	if len(res.Entries) != 1 {
		return nil, connect.NewError(connect.CodeInternal, errNoEntry)
	}
	return entryPB(res.Entries[0]), nil
}

var errNoEntry = errors.New("the agent answered without the entry")

func entryPB(e proto.FSEntry) *fspb.EntryInfo {
	info := &fspb.EntryInfo{
		Name: e.Name, Path: e.Path, Size: e.Size, Mode: e.Mode, Permissions: e.Permissions,
		Owner: e.Owner, Group: e.Group, ModifiedTime: timestamppb.New(e.ModTime),
	}
	switch e.Type {
	case "file":
		info.Type = fspb.FileType_FILE_TYPE_FILE
	case "dir":
		info.Type = fspb.FileType_FILE_TYPE_DIRECTORY
	case "symlink":
		info.Type = fspb.FileType_FILE_TYPE_SYMLINK
		t := e.Target
		info.SymlinkTarget = &t
	}
	return info
}
