package api

// Workspace methods: a host repository copied into a running VM, and the
// guest's changes taken back as a patch.
const (
	MethodWorkspacePrepare = "vm.workspace.prepare"
	// MethodWorkspaceExport upgrades to an exec stream whose stdout is
	// the patch (or the changed paths).
	MethodWorkspaceExport = "vm.workspace.export"
)

// WorkspaceSpec says which repository to import and how.
type WorkspaceSpec struct {
	Repo             string `json:"repo"`                 // absolute host path
	GuestPath        string `json:"guest_path,omitempty"` // default /root/repo
	From             string `json:"from,omitempty"`       // commit to start at (needs Branch)
	Branch           string `json:"branch,omitempty"`     // branch created at From
	IncludeUntracked bool   `json:"include_untracked,omitempty"`
	Submodules       bool   `json:"submodules,omitempty"`
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
