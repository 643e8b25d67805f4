package proto

// Copy-in protocol.
//
// A copy_in stream carries a tar archive into the guest:
//
//	host:  Request{Op: "copy_in", Params: CopyInParams}
//	agent: Response{OK: true}            (the target is ready)
//	host:  tar stream (ending with the tar end-of-archive blocks)
//	host:  CopyTrailer line             (the host's "all sent")
//	agent: CopyResult line              (done, or why not)
//
// The trailer exists because a tar stream cut exactly at an entry boundary
// looks like a complete archive: without it, a host that died mid-copy
// would leave a partial tree that looks whole.
//
// Entries are regular files, directories and symlinks with relative,
// clean names; the agent refuses anything else, any name that would leave
// the target, and any write through a symlink (one in the stream or one
// already in the target).

// OpCopyIn extracts a tar stream under a guest directory.
const OpCopyIn = "copy_in"

// CopyInParams are the parameters of copy_in.
type CopyInParams struct {
	// Dir is the absolute guest directory the entries are relative to.
	// Its parents are created as needed.
	Dir string `json:"dir"`
	// Fresh requires that Dir does not exist yet: the tree is built in a
	// hidden sibling directory and renamed to Dir only once complete, so
	// a failed copy leaves nothing behind.
	Fresh bool `json:"fresh,omitempty"`
	// DirMode is the mode of Dir when the copy creates it (0700 if zero).
	DirMode uint32 `json:"dir_mode,omitempty"`
	// Into asks for `docker cp` placement instead of Dir (vm cp): nothing
	// is created above the copy. With Base empty, Into must be an existing
	// directory and the archive is extracted into it. With Base set, every
	// entry is Base or below Base/: when Into is an existing directory
	// they land inside it, otherwise Base is renamed to Into's last
	// element, whose parent directory must exist.
	Into string `json:"into,omitempty"`
	Base string `json:"base,omitempty"`
}

// PAX records the host may set on an entry to have the agent write a git
// index for it: the agent knows the stat data only after writing the file,
// and the host already knows the object id, so nothing is hashed in the
// (possibly emulated, slow) guest.
const (
	// PAXGitOID is the entry's git object id (hex). Entries carrying it
	// are recorded in the index of the repository named by PAXGitRepo.
	PAXGitOID = "BANGER.git.oid"
	// PAXGitRepo is the repository root of the entry, relative to Dir
	// ("" or "." for Dir itself); the index is <repo>/.git/index and
	// paths in it are relative to <repo>.
	PAXGitRepo = "BANGER.git.repo"
	// PAXGitLink marks a directory entry that is a submodule (a gitlink,
	// mode 160000 in the index) rather than a tree.
	PAXGitLink = "BANGER.git.link"
)

// CopyTrailer follows the tar stream.
type CopyTrailer struct {
	Done    bool  `json:"done"`
	Entries int64 `json:"entries"` // how many tar entries the host sent
	// copy_out only (the agent is the sender):
	Skipped []string `json:"skipped,omitempty"` // sockets, fifos, devices left out (a few named)
	Error   string   `json:"error,omitempty"`   // why the archive stopped early (Done is false)
}

// CopyResult ends a copy_in stream.
type CopyResult struct {
	Entries int64  `json:"entries"`
	Bytes   int64  `json:"bytes"` // regular file contents written
	Error   string `json:"error,omitempty"`
}
