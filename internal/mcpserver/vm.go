package mcpserver

import (
	"context"
	"errors"
	"fmt"
	"path/filepath"
	"time"

	"github.com/modelcontextprotocol/go-sdk/mcp"

	"github.com/banger-dev/banger/internal/api"
	"github.com/banger-dev/banger/internal/config"
	"github.com/banger-dev/banger/internal/workspace"
)

// Sandbox is a VM as the tools report it.
type Sandbox struct {
	Name      string    `json:"name"`
	State     string    `json:"state" jsonschema:"running, stopped, paused, saved, creating or failed"`
	Image     string    `json:"image"`
	IP        string    `json:"ip,omitempty"`
	VCPUs     int       `json:"vcpus"`
	MemoryMiB int       `json:"memory_mib"`
	CreatedAt time.Time `json:"created_at"`
	LastError string    `json:"last_error,omitempty"`
}

func sandboxOf(vm api.VM) Sandbox {
	return Sandbox{Name: vm.Name, State: vm.State, Image: vm.Image, IP: vm.IP, VCPUs: vm.VCPU,
		MemoryMiB: vm.MemoryMiB, CreatedAt: vm.CreatedAt, LastError: vm.LastError}
}

// CreateInput is create_sandbox's arguments.
type CreateInput struct {
	Image     string `json:"image,omitempty" jsonschema:"image to boot: a banger image name, an OCI reference such as debian:bookworm-slim or ghcr.io/org/tools:v2 (pulled on first use), or empty for the default Debian image"`
	Name      string `json:"name,omitempty" jsonschema:"sandbox name (a DNS label: lowercase letters, digits, -); empty picks one"`
	VCPUs     int    `json:"vcpus,omitempty" jsonschema:"virtual CPUs; 0 uses banger's default"`
	Memory    string `json:"memory,omitempty" jsonschema:"memory size such as 2G, 1.5G or 512M (a plain number is MiB); empty uses banger's default"`
	Repo      string `json:"repo,omitempty" jsonschema:"path on this machine of a git repository to copy into the sandbox as a workspace: its committed files and history (uncommitted edits stay behind); relative paths are from the directory banger mcp runs in"`
	GuestPath string `json:"guest_path,omitempty" jsonschema:"where the repository goes in the sandbox, below /root (default /root/repo)"`
	Untracked bool   `json:"include_untracked,omitempty" jsonschema:"also copy the repository's untracked files that git does not ignore"`
}

// Imported is the workspace a create imported.
type Imported struct {
	GuestPath string   `json:"guest_path"`
	Commit    string   `json:"commit,omitempty"`
	Branch    string   `json:"branch,omitempty"`
	Files     int      `json:"files"`
	Notes     []string `json:"notes,omitempty"`
}

// CreateOutput is create_sandbox's result.
type CreateOutput struct {
	Sandbox   Sandbox   `json:"sandbox"`
	Workspace *Imported `json:"workspace,omitempty"`
}

// NameInput names one sandbox.
type NameInput struct {
	Name string `json:"name" jsonschema:"the sandbox's exact name"`
}

// ListOutput is list_sandboxes' result.
type ListOutput struct {
	Sandboxes []Sandbox `json:"sandboxes"`
}

func (t *tools) addVMTools(s *mcp.Server) {
	add(s, t.log, &mcp.Tool{Name: "create_sandbox", Title: "Create a sandbox",
		Description: "Create and boot a Linux microVM sandbox and return it once it is running (a first boot of an image can take a minute or more; progress is reported). " +
			"Optionally copy a local git repository into it as a workspace, whose changes export_workspace later returns as a patch. " +
			"The sandbox stays until delete_sandbox; a create whose call is cancelled is still finished by banger (list_sandboxes shows it)."},
		t.create)
	add(s, t.log, &mcp.Tool{Name: "list_sandboxes", Title: "List sandboxes",
		Description: "List every sandbox (banger VM) with its state, image, size and address.",
		Annotations: &mcp.ToolAnnotations{ReadOnlyHint: true}},
		t.list)
	add(s, t.log, &mcp.Tool{Name: "delete_sandbox", Title: "Delete a sandbox",
		Description: "Stop a sandbox and delete it with everything stored in it (disks, snapshots). Takes the exact name.",
		Annotations: &mcp.ToolAnnotations{DestructiveHint: ptr(true)}},
		t.delete)
}

func ptr[T any](v T) *T { return &v }

func (t *tools) create(ctx context.Context, req *mcp.CallToolRequest, in CreateInput) (CreateOutput, error) {
	var out CreateOutput
	p := api.CreateParams{Name: in.Name, Image: in.Image, VCPU: in.VCPUs}
	if in.VCPUs < 0 {
		return out, fmt.Errorf("vcpus: %d is not a number of CPUs", in.VCPUs)
	}
	if in.Memory != "" {
		mib, err := config.ParseMemoryMiB(in.Memory)
		if err != nil {
			return out, fmt.Errorf("memory: %w", err)
		}
		p.MemoryMiB = mib
	}
	if in.Repo == "" && (in.GuestPath != "" || in.Untracked) {
		return out, errors.New("guest_path and include_untracked need repo: the repository to import")
	}
	// The repository is planned before anything is created: a bad path
	// or repository leaves no sandbox behind.
	var plan *workspace.Plan
	var guest string
	if in.Repo != "" {
		var err error
		if guest, err = workspace.GuestPath(in.GuestPath); err != nil {
			return out, fmt.Errorf("guest_path: %w", err)
		}
		if plan, err = workspace.Make(ctx, workspace.Options{Repo: t.hostPath(in.Repo), IncludeUntracked: in.Untracked}); err != nil {
			return out, fmt.Errorf("repo %s: %w", in.Repo, err)
		}
	}
	show := reporter(ctx, req)
	vm, err := t.d.VMCreate(ctx, p, show)
	if err != nil {
		return out, err
	}
	out.Sandbox = sandboxOf(vm)
	if plan == nil {
		return out, nil
	}
	archive := plan.Stream(ctx)
	ws, err := t.d.WorkspacePrepare(ctx, api.WorkspacePrepareParams{Name: vm.Name, WorkspaceSpec: plan.Spec(guest)}, archive, show)
	archive.Close()
	if err != nil {
		// All or nothing: a sandbox without the asked-for workspace is
		// not what the caller wanted.
		if _, derr := t.d.VMDelete(context.WithoutCancel(ctx), vm.Name, nil); derr != nil {
			return out, fmt.Errorf("import %s into %s: %w (deleting the sandbox failed too: %v)", in.Repo, vm.Name, err, derr)
		}
		return out, fmt.Errorf("import %s: %w (the sandbox was deleted)", in.Repo, err)
	}
	imp := &Imported{GuestPath: ws.GuestPath, Commit: ws.Commit, Branch: ws.Branch, Files: ws.Files}
	if plan.Uncommitted > 0 {
		imp.Notes = append(imp.Notes, fmt.Sprintf("%d files with uncommitted changes were copied as last committed", plan.Uncommitted))
	}
	if plan.SkippedUntracked > 0 {
		imp.Notes = append(imp.Notes, fmt.Sprintf("%d untracked files were not copied (include_untracked copies those git does not ignore)", plan.SkippedUntracked))
	}
	out.Workspace = imp
	return out, nil
}

func (t *tools) list(ctx context.Context, req *mcp.CallToolRequest, _ struct{}) (ListOutput, error) {
	vms, err := t.d.VMList(ctx)
	if err != nil {
		return ListOutput{}, err
	}
	out := ListOutput{Sandboxes: []Sandbox{}}
	for _, vm := range vms {
		out.Sandboxes = append(out.Sandboxes, sandboxOf(vm))
	}
	return out, nil
}

func (t *tools) delete(ctx context.Context, req *mcp.CallToolRequest, in NameInput) (Sandbox, error) {
	if in.Name == "" {
		return Sandbox{}, errors.New("name: give the sandbox's exact name (list_sandboxes shows them)")
	}
	vm, err := t.d.VMDelete(ctx, in.Name, reporter(ctx, req))
	if err != nil {
		return Sandbox{}, err
	}
	s := sandboxOf(vm)
	s.State = "deleted"
	return s, nil
}

// hostPath resolves a path on this machine against the server's
// directory.
func (t *tools) hostPath(p string) string {
	if filepath.IsAbs(p) || t.dir == "" {
		return p
	}
	return filepath.Join(t.dir, p)
}
