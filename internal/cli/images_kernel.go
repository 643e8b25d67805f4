package cli

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/banger-dev/banger/internal/api"
	"github.com/banger-dev/banger/internal/client"
	"github.com/banger-dev/banger/internal/config"
	"github.com/spf13/cobra"
)

func newKernelCmd(f *factory) *cobra.Command {
	cmd := &cobra.Command{Use: "kernel", Short: "Pull, import, list and delete guest kernels"}
	cmd.AddCommand(newKernelImportCmd(f, nil), newKernelLsCmd(f), newKernelPullCmd(f, nil), newKernelShowCmd(f),
		newKernelDeleteCmd(f), newCatalogCmd(f, (*client.Client).KernelCatalog, "kernels"))
	return cmd
}

// kernelImportOptions are `kernel import`'s flags and argument, checked, and
// what it needs.
type kernelImportOptions struct {
	IO     *iostreams
	Client *client.Client

	Params api.ImportKernelParams      // a Debian package (downloaded or --deb)
	Files  api.ImportKernelFilesParams // or --kernel FILE [--modules FILE]
}

// newKernelImportCmd builds `kernel import`; runF, when set, runs instead of
// kernelImportRun.
func newKernelImportCmd(f *factory, runF func(*kernelImportOptions) error) *cobra.Command {
	opts := &kernelImportOptions{IO: f.IO, Client: f.Client}
	p, files := &opts.Params, &opts.Files
	imp := &cobra.Command{
		Use:   "import [NAME]",
		Short: "Import a Debian kernel package (default: the cloud kernel), or kernel files",
		Long: `Download Debian's cloud kernel (linux-image-cloud-amd64) with apt-get, or
take --package or a local --deb, and register it as NAME (default
` + config.DefaultKernelName + `). The virtio, overlayfs and ext4 modules it needs
are packed for the initramfs that banger-agent runs as /init.

With --kernel FILE (a bzImage vmlinuz or an ELF vmlinux) the kernel is
taken as is, with --modules FILE (a modules.cpio as banger writes it) when
its drivers are modules; --release gives its uname -r.`,
		Args: cobraMaxArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			if len(args) == 1 {
				p.Name, files.Name = args[0], args[0]
			}
			if err := kernelImportSource(*p, *files); err != nil {
				return err
			}
			if runF != nil {
				return runF(opts)
			}
			return kernelImportRun(cmd.Context(), opts)
		},
	}
	imp.Flags().StringVar(&p.Package, "package", "", "Debian package to download (e.g. linux-image-6.1.0-26-cloud-amd64)")
	imp.Flags().StringVar(&p.DebFile, "deb", "", "import a local .deb file instead of downloading")
	imp.Flags().StringVar(&files.Kernel, "kernel", "", "import this vmlinuz or vmlinux file instead of a package")
	imp.Flags().StringVar(&files.Modules, "modules", "", "with --kernel: the modules.cpio for the initramfs")
	imp.Flags().StringVar(&files.Release, "release", "", "with --kernel: the kernel's release (uname -r)")
	return imp
}

// kernelImportRun imports the kernel from the source the flags name.
func kernelImportRun(ctx context.Context, opts *kernelImportOptions) error {
	p, files := opts.Params, opts.Files
	if files.Kernel != "" {
		return importKernelFiles(ctx, opts, files)
	}
	show, done := bytesPrinter(opts.IO)
	k, err := importKernelPackage(ctx, opts.Client, p, show)
	done()
	if err != nil {
		return err
	}
	printf(opts.IO.Out, "kernel %s ready (%s)\n", k.Name, k.Release)
	return nil
}

// kernelImportSource refuses flags naming more than one source, and
// file-only flags without --kernel, rather than silently using one.
func kernelImportSource(p api.ImportKernelParams, f api.ImportKernelFilesParams) error {
	var given []string
	for _, s := range []struct{ flag, v string }{{"--package", p.Package}, {"--deb", p.DebFile}, {"--kernel", f.Kernel}} {
		if s.v != "" {
			given = append(given, s.flag)
		}
	}
	if len(given) > 1 {
		return usageError{fmt.Errorf("kernel import: %s name different sources: give one", strings.Join(given, " and "))}
	}
	if f.Kernel == "" && (f.Modules != "" || f.Release != "") {
		return usageError{errors.New("kernel import: --modules and --release go with --kernel FILE")}
	}
	return nil
}

func importKernelFiles(ctx context.Context, opts *kernelImportOptions, p api.ImportKernelFilesParams) error {
	if p.Name == "" {
		return usageError{fmt.Errorf("kernel import --kernel: give a NAME")}
	}
	show, done := bytesPrinter(opts.IO)
	info, err := sendKernelFiles(ctx, opts.Client, p, show)
	done()
	if err != nil {
		return err
	}
	printf(opts.IO.Out, "kernel %s ready (%s)\n", info.Name, info.Release)
	return nil
}

func newKernelLsCmd(f *factory) *cobra.Command {
	return newListCmd(f, "List kernels", (*client.Client).KernelList,
		[]string{"NAME", "RELEASE", "SOURCE", "CREATED"},
		func(k api.Kernel) []string {
			return []string{k.Name, k.Release, k.Source, k.CreatedAt.Format(time.DateTime)}
		})
}

// kernelPullOptions are `kernel pull`'s flags and argument, and what it
// needs.
type kernelPullOptions struct {
	IO     *iostreams
	Client interface {
		KernelPull(context.Context, api.PullKernelParams, func(api.Progress)) (api.KernelInfo, error)
	}

	Params api.PullKernelParams
}

// newKernelPullCmd builds `kernel pull`; runF, when set, runs instead of
// kernelPullRun.
func newKernelPullCmd(f *factory, runF func(*kernelPullOptions) error) *cobra.Command {
	opts := &kernelPullOptions{IO: f.IO, Client: f.Client}
	p := &opts.Params
	pull := &cobra.Command{
		Use:   "pull NAME",
		Short: "Install a kernel from the kernel catalog (sha256-pinned bundle, or a Debian package)",
		Args:  exactArgs(1, "a kernel catalog name"),
		RunE: func(cmd *cobra.Command, args []string) error {
			p.Ref = args[0]
			if runF != nil {
				return runF(opts)
			}
			return kernelPullRun(cmd.Context(), opts)
		},
	}
	pull.Flags().StringVar(&p.Name, "name", "", "register under this name (default: the catalog name)")
	return pull
}

// kernelPullRun installs the kernel, showing byte progress.
func kernelPullRun(ctx context.Context, opts *kernelPullOptions) error {
	p := opts.Params
	show, done := bytesPrinter(opts.IO)
	info, err := opts.Client.KernelPull(ctx, p, show)
	done()
	if err != nil {
		return err
	}
	printf(opts.IO.Out, "kernel %s ready (%s)\n", info.Name, info.Release)
	return nil
}

func newKernelShowCmd(f *factory) *cobra.Command {
	return newShowCmd(f, "Show a kernel: release, files, source and the VMs using it", "a kernel name", (*client.Client).KernelShow,
		func(info api.KernelInfo) [][2]string {
			return [][2]string{{"name", info.Name}, {"release", info.Release}, {"dir", info.Dir},
				{"files", strings.Join(info.Files, " ")}, {"source", info.Source}, {"digest", info.Digest},
				{"created", info.CreatedAt.Format(time.DateTime)}, {"used by", strings.Join(info.UsedBy, ", ")}}
		})
}

func newKernelDeleteCmd(f *factory) *cobra.Command {
	return &cobra.Command{
		Use:     "delete NAME",
		Aliases: []string{"rm"},
		Short:   "Delete a kernel (exact name; refused while a VM uses it)",
		Args:    exactArgs(1, "a kernel name"),
		RunE: func(cmd *cobra.Command, args []string) error {
			if err := f.Client.KernelDelete(cmd.Context(), args[0]); err != nil {
				return err
			}
			printf(f.IO.Out, "kernel %s deleted\n", args[0])
			return nil
		},
	}
}
