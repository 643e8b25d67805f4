package proto

// Copy-out protocol (vm cp NAME:SRC DST).
//
//	host:  Request{Op: "copy_out", Params: CopyOutParams}
//	agent: Response{OK: true}            (the path exists and is readable)
//	agent: tar stream (ending with the tar end-of-archive blocks)
//	agent: CopyTrailer line              (Done, or the error that stopped it)
//
// The archive holds one top-level entry named after Path's last element
// and, for a directory, everything below it. Regular files, directories
// and symlinks are sent (symlinks as symlinks: nothing is followed, not
// even Path itself when it is a symlink); other file types are skipped
// and named in the trailer; hard links arrive as separate files. The
// host must treat the stream as untrusted: the guest may send anything.

// OpCopyOut writes a tar stream of a guest path.
const OpCopyOut = "copy_out"

// CopyOutParams are the parameters of copy_out.
type CopyOutParams struct {
	Path string `json:"path"` // absolute guest path
}
