package api

// Images and kernels beyond build/list: catalogs, OCI pulls, bundles,
// register/promote/export/delete (issue 7).

// Methods.
const (
	MethodImagePull        = "image.pull"
	MethodImageShow        = "image.show"
	MethodImageDelete      = "image.delete"
	MethodImageRegister    = "image.register"
	MethodImagePromote     = "image.promote"
	MethodImageExport      = "image.export"
	MethodImageCatalog     = "image.catalog"
	MethodKernelPull       = "kernel.pull"
	MethodKernelShow       = "kernel.show"
	MethodKernelDelete     = "kernel.delete"
	MethodKernelImportFile = "kernel.import_files"
	MethodKernelCatalog    = "kernel.catalog"
)

// Byte-counting progress stages. Their events carry Done, Total and Unit
// (UnitBytes), from which the CLI draws a bar, and a Message for people
// and logs, "WHAT: DONE / TOTAL (PCT%) · RATE/s · ETA T"; they are sent
// at most once a second. A last event without Unit closes the stage.
const (
	StageDownload = "download"
	StageFlatten  = "flatten"
	StageExport   = "export"
	StageUpload   = "upload" // a file the client sends (image register, kernel import)
)

// PullImageParams pulls REF (a catalog name or an OCI reference).
type PullImageParams struct {
	Ref  string `json:"ref"`
	Name string `json:"name,omitempty"` // default: the catalog name, or derived from the reference
}

// ImageInfo is one image in detail.
type ImageInfo struct {
	Image
	UUID    string   `json:"uuid,omitempty"`
	Kernel  string   `json:"kernel,omitempty"` // "" = the default kernel
	Init    string   `json:"init"`             // "", "none" or a path
	HasSSHD bool     `json:"has_sshd"`
	Digest  string   `json:"digest,omitempty"`
	Ref     string   `json:"ref,omitempty"`
	UsedBy  []string `json:"used_by,omitempty"` // VM names
	Notes   []string `json:"notes,omitempty"`   // things the pull skipped or changed
	// Runtime is what the image's config asks for when it runs: `vm run`
	// applies it (absent = nothing recorded).
	Runtime ImageRuntime `json:"runtime,omitzero"`
}

// ImageRuntime is an image's environment, working directory and default
// command (Entrypoint then Cmd: what `vm run` runs when given none).
type ImageRuntime struct {
	Env        []string `json:"env,omitempty"` // KEY=VALUE, before the request's own
	WorkingDir string   `json:"working_dir,omitempty"`
	Entrypoint []string `json:"entrypoint,omitempty"`
	Cmd        []string `json:"cmd,omitempty"`
	User       string   `json:"user,omitempty"` // who commands run as (default root)
}

// RegisterImageParams registers an ext4 file as an image. The file's
// bytes are the call's request body: the daemon never opens a client
// path.
type RegisterImageParams struct {
	Name string `json:"name"`
	// Rootfs is the client's name for the file, recorded in the image's
	// source ("file NAME"); the daemon does not open it.
	Rootfs string `json:"rootfs,omitempty"`
	// Size is the number of bytes the body carries: progress shows it,
	// and a body that ends short of it is refused. 0: unknown.
	Size   int64  `json:"size,omitempty"`
	Kernel string `json:"kernel,omitempty"` // kernel to boot it with
}

// PromoteImageParams turns a stopped VM's disk state into an image.
type PromoteImageParams struct {
	VM   string `json:"vm"`
	Name string `json:"name"`
}

// ExportImageParams writes an image as a bundle and a catalog entry.
// The bundle is the call's response body, which the client writes where
// it likes; the call's request body is the catalog to add the entry to
// (empty: a new catalog), whose updated text comes back in the result.
type ExportImageParams struct {
	Name string `json:"name"`
	// URL is the bundle's URL in the entry (the client makes it relative
	// to its catalog); default NAME.tar.zst.
	URL string `json:"url,omitempty"`
	// Catalog is the client's name for its catalog file, for messages
	// only.
	Catalog string `json:"catalog,omitempty"`
}

// ExportResult says what was written.
type ExportResult struct {
	// Bundle and Catalog are the client's files (the daemon leaves them
	// empty: the CLI fills them in).
	Bundle  string       `json:"bundle"`
	Catalog string       `json:"catalog"`
	Entry   CatalogEntry `json:"entry"`
	// CatalogFile is the catalog sent, with the entry added or replaced:
	// what the client writes to Catalog.
	CatalogFile string `json:"catalog_file,omitempty"`
}

// CatalogEntry is one image or kernel catalog entry as listed to users.
type CatalogEntry struct {
	Name        string `json:"name"`
	Description string `json:"description,omitempty"`
	URL         string `json:"url,omitempty"`
	SHA256      string `json:"sha256,omitempty"`
	Size        int64  `json:"size,omitempty"`
	Kernel      string `json:"kernel,omitempty"`
	Ref         string `json:"ref,omitempty"`
	Build       string `json:"build,omitempty"`
	Release     string `json:"release,omitempty"`
	Package     string `json:"debian_package,omitempty"`
	Installed   bool   `json:"installed"`
}

// CatalogList is a catalog as listed to users.
type CatalogList struct {
	Source  string         `json:"source"`
	Entries []CatalogEntry `json:"entries"`
}

// PullKernelParams pulls a kernel catalog entry.
type PullKernelParams struct {
	Ref  string `json:"ref"`
	Name string `json:"name,omitempty"`
}

// ImportKernelFilesParams imports a kernel from loose files. The files
// are the call's request body: a tar with the entry "kernel" and, when
// Modules is given, "modules" (KernelFilesEntry*); Kernel and Modules are
// the client's names for them, for the record only.
type ImportKernelFilesParams struct {
	Name    string `json:"name"`
	Kernel  string `json:"kernel"`            // vmlinuz (bzImage) or ELF vmlinux
	Modules string `json:"modules,omitempty"` // modules.cpio
	Release string `json:"release"`
}

// Entries of kernel.import_files' request body (a tar).
const (
	KernelFilesEntryKernel  = "kernel"
	KernelFilesEntryModules = "modules"
)

// KernelInfo is one kernel in detail.
type KernelInfo struct {
	Kernel
	Digest string   `json:"digest,omitempty"`
	Files  []string `json:"files"`
	UsedBy []string `json:"used_by,omitempty"`
}
