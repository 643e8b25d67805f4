package api

// Workspace methods: a host repository copied into a running VM, and the
// guest's changes taken back as a patch.
const (
	MethodWorkspacePrepare = "vm.workspace.prepare"
	// MethodWorkspaceExport upgrades to an exec stream whose stdout is
	// the patch (or the changed paths).
	MethodWorkspaceExport = "vm.workspace.export"
)

// WorkspaceSpec describes an import the client has planned. The daemon
// never opens the repository: the client builds the archive (see
// internal/workspace) and sends it as the call's request body — the tar
// stream the agent's copy_in takes, then its proto.CopyTrailer line. For
// vm.workspace.prepare the body follows the request; for vm.run with a
// Workspace it does too, and the exec stream starts after it. A body
// that ends early, or without the trailer, leaves nothing in the guest.
// The fields below come from the client's plan and are reported back.
type WorkspaceSpec struct {
	GuestPath string `json:"guest_path,omitempty"` // default /root/repo
	Commit    string `json:"commit,omitempty"`     // the top repository's commit, as imported
	Branch    string `json:"branch,omitempty"`     // its branch in the guest ("" detached)
	Files     int    `json:"files"`                // paths the archive holds, for the result
	Summary   string `json:"summary,omitempty"`    // one line for the progress message
}

// WorkspacePrepareParams imports a repository into the VM Name.
type WorkspacePrepareParams struct {
	Name string `json:"name"`
	WorkspaceSpec
}

// Workspace is the result of an import.
type Workspace struct {
	VM        string  `json:"vm"`
	GuestPath string  `json:"guest_path"`
	Commit    string  `json:"commit,omitempty"`
	Branch    string  `json:"branch,omitempty"`
	Files     int     `json:"files"`
	Bytes     int64   `json:"bytes"` // file contents written in the guest, history included
	Seconds   float64 `json:"seconds"`
}

// WorkspaceExportParams exports the changes of the workspace at
// GuestPath in the VM Name.
type WorkspaceExportParams struct {
	Name      string `json:"name"`
	GuestPath string `json:"guest_path,omitempty"`
	Base      string `json:"base,omitempty"` // guest commit; default the import's base
	NameOnly  bool   `json:"name_only,omitempty"`
}
