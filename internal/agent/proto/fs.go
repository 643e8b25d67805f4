package proto

import "time"

// Filesystem and watch ops, for the daemon's E2B envd adapter
// (internal/envd): stat, mkdir, move, listdir and remove in one
// request-response op, and a streaming inotify watch.
//
//	host:  Request{Op: "fs", Params: FSParams}
//	agent: Response{OK: true, Data: FSResult}   (FSResult.Err for a refused op)
//
//	host:  Request{Op: "watch", Params: WatchParams}
//	agent: Response{OK: true}                   (the watches are in place)
//	agent: WatchEvent lines, until the host closes the stream
const (
	OpFS    = "fs"
	OpWatch = "watch"
)

// FramePID is a guest -> host exec frame sent first, before any output,
// when ExecRequest.ReportPID asks for it: the process's pid (4 bytes, big
// endian). Older hosts never ask, so they never see it.
const FramePID byte = 8

// FS actions.
const (
	FSStat   = "stat"
	FSMkdir  = "mkdir"  // with parents, owned by User; FSExists when it exists
	FSMove   = "move"   // Path to Dest, creating Dest's parents
	FSList   = "list"   // the entries below Path, Depth levels deep (≥ 1)
	FSRemove = "remove" // recursively
	FSUser   = "user"   // only resolves User (FSResult.Home, UID, GID)
)

// FSParams are an fs op's parameters. A relative Path or Dest is relative
// to User's home, as E2B's envd resolves it.
type FSParams struct {
	Action string `json:"action"`
	Path   string `json:"path"`
	Dest   string `json:"dest,omitempty"`
	Depth  int    `json:"depth,omitempty"`
	// User resolves relative paths and owns what mkdir and move create
	// (default root). A name or uid.
	User string `json:"user,omitempty"`
	// Own (move) gives the moved entry to User: an upload's new file.
	Own bool `json:"own,omitempty"`
}

// FSEntry describes one filesystem entry (not followed when a symlink).
type FSEntry struct {
	Name        string    `json:"name"`
	Type        string    `json:"type"` // file, dir, symlink, or other
	Path        string    `json:"path"` // absolute
	Size        int64     `json:"size"`
	Mode        uint32    `json:"mode"` // permission and type bits as Go's fs.FileMode
	Permissions string    `json:"permissions"`
	Owner       string    `json:"owner"`
	Group       string    `json:"group"`
	ModTime     time.Time `json:"mod_time"`
	Target      string    `json:"target,omitempty"` // a symlink's target
}

// FS error codes (FSError.Code).
const (
	FSNotFound = "not_found"
	FSExists   = "exists"
	FSInvalid  = "invalid"
	FSDenied   = "denied"
	FSFailed   = "failed"
)

// FSError is an fs op the agent refused, with a code the host maps to
// its own (E2B's Connect codes).
type FSError struct {
	Code    string `json:"code"`
	Message string `json:"message"`
}

// FSResult is an fs op's answer.
type FSResult struct {
	Entries []FSEntry `json:"entries,omitempty"` // one for stat, mkdir, move
	Home    string    `json:"home"`              // User's home
	UID     uint32    `json:"uid"`
	GID     uint32    `json:"gid"`
	Err     *FSError  `json:"error,omitempty"`
}

// WatchParams start a watch of a directory.
type WatchParams struct {
	Path      string `json:"path"`
	Recursive bool   `json:"recursive,omitempty"`
	User      string `json:"user,omitempty"` // resolves a relative Path
}

// Watch event types.
const (
	WatchCreate = "create"
	WatchWrite  = "write"
	WatchRemove = "remove"
	WatchRename = "rename"
	WatchChmod  = "chmod"
)

// UploadDirPrefix starts the hidden directory an upload is staged in
// (beside its destination, renamed into place when complete). A watch
// reports nothing below it, nor copy_in's own staging directories: an
// upload shows as the file's creation (the rename into place).
const UploadDirPrefix = ".banger-upload-"

// WatchEvent is one change below a watched directory. Name is relative
// to the watched directory.
type WatchEvent struct {
	Name string `json:"name"`
	Type string `json:"type"`
}
