package cli

import (
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"syscall"

	"github.com/spf13/cobra"
	"github.com/spf13/pflag"
	"golang.org/x/term"

	"github.com/banger-dev/banger/internal/agent/proto"
	"github.com/banger-dev/banger/internal/api"
	"github.com/banger-dev/banger/internal/client"
	"github.com/banger-dev/banger/internal/workspace"
)

func newWorkspaceCmd(f *factory) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "workspace",
		Short: "Copy a git repository into a VM; take the guest's changes back as a patch",
		Long: `A workspace is a git repository copied into a VM: its committed files (and,
with --include-untracked, untracked files git does not ignore) plus the
history of the commit, so git log and git diff work in the guest. Ignored
files are never copied, nor are the host's git config, remotes or hooks.

export writes what the guest changed since the import — commits, staged and
unstaged edits, new files — as one patch that git apply takes on a clean
checkout of the base. It does not touch the guest's index, refs or files.`,
	}
	cmd.AddCommand(newWorkspacePrepareCmd(f, nil), newWorkspaceExportCmd(f, nil))
	return cmd
}

// workspaceFlags are the import flags of `vm workspace prepare` and
// `vm run REPO --`.
type workspaceFlags struct {
	guestPath, from, branch       string
	untracked, submodules, dryRun bool
}

func (f *workspaceFlags) register(fs *pflag.FlagSet) {
	fs.StringVar(&f.guestPath, "guest-path", "", "where the repository goes in the guest, below ~/ (default "+workspace.DefaultGuestPath+")")
	fs.BoolVar(&f.untracked, "include-untracked", false, "also copy untracked files that git does not ignore (ignored files never are)")
	fs.StringVar(&f.from, "from", "", "check out this commit in the guest instead of HEAD (needs --branch)")
	fs.StringVar(&f.branch, "branch", "", "name of the branch the guest checkout is on")
	fs.BoolVar(&f.submodules, "submodules", false, "copy submodules too (their presence is an error otherwise)")
	fs.BoolVar(&f.dryRun, "dry-run", false, "list the files that would be copied, with their modes, and stop (no VM, no daemon)")
}

func (f *workspaceFlags) changed(cmd *cobra.Command) bool {
	for _, n := range []string{"guest-path", "include-untracked", "from", "branch", "submodules", "dry-run"} {
		if cmd.Flags().Changed(n) {
			return true
		}
	}
	return false
}

// plan checks the import on the host, where bad input is cheapest to
// report: no daemon is needed and no VM is created. It prints a note
// about files left behind; with --dry-run it lists the files and
// returns a nil plan. The CLI builds the archive from the plan and sends
// it: the daemon never opens the repository.
func (f *workspaceFlags) plan(ctx context.Context, ios *iostreams, repo string) (*importPlan, error) {
	if f.from != "" && f.branch == "" {
		return nil, usageError{fmt.Errorf("--from needs --branch: name the branch the guest checkout starts at %s", f.from)}
	}
	guest, err := workspace.GuestPath(f.guestPath)
	if err != nil {
		return nil, usageError{fmt.Errorf("--guest-path: %w", err)}
	}
	p, err := workspace.Make(ctx, workspace.Options{Repo: repo, From: f.from, Branch: f.branch,
		IncludeUntracked: f.untracked, Submodules: f.submodules})
	if err != nil {
		return nil, err
	}
	if p.SkippedUntracked > 0 {
		fmt.Fprintf(ios.Err, "banger: %s not copied (--include-untracked copies those git does not ignore)\n", count(p.SkippedUntracked, "untracked file"))
	}
	if p.Uncommitted > 0 {
		fmt.Fprintf(ios.Err, "banger: %s with uncommitted changes copied as last committed (commit to take the changes along)\n", count(p.Uncommitted, "file"))
	}
	if f.dryRun {
		if err := p.WriteListing(ios.Out); err != nil {
			return nil, err
		}
		fmt.Fprintf(ios.Err, "dry run: %s → %s in the guest; nothing was copied\n", p.Summary(), guest)
		return nil, nil
	}
	return &importPlan{spec: p.Spec(guest), plan: p}, nil
}

// importPlan is a planned import: what the daemon is told, and the plan
// whose archive is the call's request body.
type importPlan struct {
	spec api.WorkspaceSpec
	plan *workspace.Plan
}

// workspacePrepareOptions are `vm workspace prepare`'s flags and
// arguments, and what it needs.
type workspacePrepareOptions struct {
	IO     *iostreams
	Client *client.Client

	Name, Repo string
	Workspace  workspaceFlags
	JSON       bool
}

// newWorkspacePrepareCmd builds `vm workspace prepare`; runF, when set,
// runs instead of workspacePrepareRun.
func newWorkspacePrepareCmd(f *factory, runF func(*workspacePrepareOptions) error) *cobra.Command {
	opts := &workspacePrepareOptions{IO: f.IO, Client: f.Client}
	cmd := &cobra.Command{
		Use:   "prepare NAME REPO",
		Short: "Copy a git repository into a running VM",
		Example: "  banger vm workspace prepare dev ./myrepo\n" +
			"  banger vm workspace prepare dev . --from origin/main --branch fix-123 --guest-path ~/src/app\n" +
			"  banger vm workspace prepare dev . --dry-run",
		Args: exactArgs(2, "a VM name and a repository path"),
		RunE: func(cmd *cobra.Command, args []string) error {
			opts.Name, opts.Repo = args[0], args[1]
			if runF != nil {
				return runF(opts)
			}
			return workspacePrepareRun(cmd.Context(), opts)
		},
	}
	opts.Workspace.register(cmd.Flags())
	cmd.Flags().BoolVar(&opts.JSON, "json", false, "print the result as JSON")
	return cmd
}

// workspacePrepareRun plans the import on the host, then sends the
// daemon its archive (the daemon never opens the repository).
func workspacePrepareRun(ctx context.Context, opts *workspacePrepareOptions) error {
	ip, err := opts.Workspace.plan(ctx, opts.IO, opts.Repo)
	if err != nil || ip == nil {
		return err
	}
	show, finish := progressPrinter(opts.IO)
	archive := ip.plan.Stream(ctx)
	ws, err := opts.Client.WorkspacePrepare(ctx, api.WorkspacePrepareParams{Name: opts.Name, WorkspaceSpec: ip.spec}, archive, show)
	archive.Close()
	finish()
	if err != nil {
		return err
	}
	if opts.JSON {
		return printJSON(opts.IO.Out, ws)
	}
	fmt.Fprintf(opts.IO.Out, "%s:%s: %d files, %s, in %.1f s\n", ws.VM, ws.GuestPath, ws.Files, describeCommit(ws), ws.Seconds)
	return nil
}

func describeCommit(ws api.Workspace) string {
	c := "no commits yet"
	if ws.Commit != "" {
		c = "commit " + ws.Commit[:min(12, len(ws.Commit))]
	}
	if ws.Branch != "" {
		return c + " on " + ws.Branch
	}
	return c + " (detached)"
}

// workspaceExportOptions are `vm workspace export`'s flags and
// arguments, checked, and what it needs.
type workspaceExportOptions struct {
	IO     *iostreams
	Client *client.Client

	Params api.WorkspaceExportParams
	Output string // -o: a file, or "" / "-" for stdout
}

// newWorkspaceExportCmd builds `vm workspace export`; runF, when set,
// runs instead of workspaceExportRun.
func newWorkspaceExportCmd(f *factory, runF func(*workspaceExportOptions) error) *cobra.Command {
	opts := &workspaceExportOptions{IO: f.IO, Client: f.Client}
	p := &opts.Params
	cmd := &cobra.Command{
		Use:   "export NAME",
		Short: "Write the guest's changes to a workspace as a patch",
		Long: `Write everything the guest changed in a workspace since its import — commits
made in the guest, staged and unstaged edits, new files git does not ignore —
as one binary-safe patch for git apply on a clean checkout of the base.

The guest's index, refs and working tree are left exactly as they were.`,
		Example: "  banger vm workspace export dev > fix.patch && git apply fix.patch\n" +
			"  banger vm workspace export dev --name-only\n  banger vm workspace export dev --base HEAD~3 -o last3.patch",
		Args: exactArgs(1, "one VM name"),
		RunE: func(cmd *cobra.Command, args []string) error {
			p.Name = args[0]
			if _, err := workspace.GuestPath(p.GuestPath); err != nil {
				return usageError{fmt.Errorf("--guest-path: %w", err)}
			}
			if runF != nil {
				return runF(opts)
			}
			return workspaceExportRun(cmd.Context(), opts)
		},
	}
	cmd.Flags().StringVar(&p.GuestPath, "guest-path", "", "the workspace's path in the guest (default "+workspace.DefaultGuestPath+")")
	cmd.Flags().StringVar(&p.Base, "base", "", "guest commit to diff against (default: what the import copied in)")
	cmd.Flags().BoolVar(&p.NameOnly, "name-only", false, "list the changed paths instead of writing a patch")
	cmd.Flags().StringVarP(&opts.Output, "output", "o", "", "write to this file instead of stdout (replaced only when the export succeeds)")
	return cmd
}

// workspaceExportRun streams the guest's patch to stdout or, through a
// temporary file renamed at the end, to the -o file: a failed export
// never leaves a truncated patch behind.
func workspaceExportRun(ctx context.Context, opts *workspaceExportOptions) error {
	p, output, ios := opts.Params, opts.Output, opts.IO
	out := ios.Out
	var tmp *os.File
	if output != "" && output != "-" {
		var err error
		if tmp, err = os.CreateTemp(filepath.Dir(output), "."+filepath.Base(output)+".*"); err != nil {
			return err
		}
		defer os.Remove(tmp.Name())
		defer tmp.Close()
		out = tmp
	} else if isTerminalWriter(out) {
		out = &termSafe{w: out}
	}
	conn, err := opts.Client.WorkspaceExport(ctx, p)
	if err != nil {
		return err
	}
	defer conn.Close()
	cw := &countWriter{w: out}
	st, err := proto.PumpExec(conn, nil, cw, &termSafe{w: ios.Err}, nil)
	if err != nil {
		return fmt.Errorf("lost the export stream: %w", err)
	}
	if st.Code != 0 || st.Error != "" {
		if st.Error != "" {
			fmt.Fprintln(ios.Err, "banger:", st.Error)
		}
		return exitError{ExitError}
	}
	if tmp != nil {
		if err := tmp.Close(); err != nil {
			return err
		}
		if err := os.Rename(tmp.Name(), output); err != nil {
			return err
		}
	}
	if cw.n == 0 {
		fmt.Fprintln(ios.Err, "banger: no changes since the import: the export is empty")
	}
	return nil
}

type countWriter struct {
	w io.Writer
	n int64
}

func (c *countWriter) Write(p []byte) (int, error) {
	n, err := c.w.Write(p)
	c.n += int64(n)
	return n, err
}

func isTerminalWriter(w io.Writer) bool {
	f, ok := w.(*os.File)
	return ok && term.IsTerminal(int(f.Fd()))
}

// termSafe replaces control characters (but newline and tab) with '?':
// what the guest writes is untrusted and must not drive the terminal.
type termSafe struct{ w io.Writer }

func (t *termSafe) Write(p []byte) (int, error) {
	b := make([]byte, len(p))
	for i, c := range p {
		if (c < 0x20 && c != '\n' && c != '\t') || c == 0x7f {
			c = '?'
		}
		b[i] = c
	}
	_, err := t.w.Write(b)
	return len(p), err
}

// splitRunRepo finds the repository of `vm run REPO [flags] -- CMD`. With
// interspersed flags off, everything after REPO arrives as arguments,
// including the "--" and any flags given after the repository, which are
// parsed here.
func splitRunRepo(cmd *cobra.Command, args []string) (string, []string, error) {
	if cmd.ArgsLenAtDash() >= 0 || len(args) == 0 {
		return "", args, nil
	}
	if err := missingRepo(args[0]); err != nil {
		return "", nil, err
	}
	if len(args) < 2 {
		return "", args, nil
	}
	dash := slices.Index(args, "--")
	if dash < 1 {
		return "", args, nil
	}
	if st, err := os.Stat(args[0]); err != nil || !st.IsDir() {
		return "", args, nil
	}
	if dash > 1 {
		if err := cmd.Flags().Parse(args[1:dash]); err != nil {
			return "", nil, usageError{fmt.Errorf("%w (see `banger vm run --help`)", err)}
		}
		if rest := cmd.Flags().Args(); len(rest) > 0 {
			return "", nil, usageError{fmt.Errorf("unexpected %q between the repository and --: banger vm run [flags] REPO [flags] -- CMD [ARGS...]", rest[0])}
		}
	}
	return args[0], args[dash+1:], nil
}

// missingRepo refuses a first argument that looks like a path (has a
// slash, or starts with . or ~) but names nothing: a mistyped repository
// would otherwise run in the guest as a command. A guest command that is
// a path goes after --.
func missingRepo(arg string) error {
	if !strings.Contains(arg, "/") && !strings.HasPrefix(arg, ".") && !strings.HasPrefix(arg, "~") {
		return nil
	}
	_, err := os.Stat(arg)
	if err == nil {
		return nil
	}
	if !errors.Is(err, fs.ErrNotExist) && !errors.Is(err, syscall.ENOTDIR) {
		return usageError{fmt.Errorf("repository %s: %w", arg, err)}
	}
	return usageError{fmt.Errorf("repository %s does not exist (a command to run in the guest goes after --: banger vm run [flags] -- %s ...)", arg, arg)}
}

// count writes "1 file", "2 files".
func count(n int, noun string) string {
	if n == 1 {
		return "1 " + noun
	}
	return fmt.Sprintf("%d %ss", n, noun)
}
