package cli

import (
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/banger-dev/banger/internal/api"
	"github.com/banger-dev/banger/internal/client"
	"github.com/banger-dev/banger/internal/config"
	"github.com/spf13/cobra"
)

func newKernelCmd(env *Env) *cobra.Command {
	cmd := &cobra.Command{Use: "kernel", Short: "Pull, import, list and delete guest kernels"}
	cmd.AddCommand(newKernelImportCmd(env), newKernelLsCmd(env), newKernelPullCmd(env), newKernelShowCmd(env),
		newKernelDeleteCmd(env), newCatalogCmd(env, (*client.Client).KernelCatalog, "kernels"))
	return cmd
}

func newKernelImportCmd(env *Env) *cobra.Command {
	var p api.ImportKernelParams
	var files api.ImportKernelFilesParams
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
			if err := kernelImportSource(p, files); err != nil {
				return err
			}
			if files.Kernel != "" {
				return importKernelFiles(cmd, env, files)
			}
			show, done := bytesPrinter(env)
			k, err := importKernelPackage(cmd.Context(), env.Client, p, show)
			done()
			if err != nil {
				return err
			}
			printf(env.Out, "kernel %s ready (%s)\n", k.Name, k.Release)
			return nil
		},
	}
	imp.Flags().StringVar(&p.Package, "package", "", "Debian package to download (e.g. linux-image-6.1.0-26-cloud-amd64)")
	imp.Flags().StringVar(&p.DebFile, "deb", "", "import a local .deb file instead of downloading")
	imp.Flags().StringVar(&files.Kernel, "kernel", "", "import this vmlinuz or vmlinux file instead of a package")
	imp.Flags().StringVar(&files.Modules, "modules", "", "with --kernel: the modules.cpio for the initramfs")
	imp.Flags().StringVar(&files.Release, "release", "", "with --kernel: the kernel's release (uname -r)")
	return imp
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

func importKernelFiles(cmd *cobra.Command, env *Env, p api.ImportKernelFilesParams) error {
	if p.Name == "" {
		return usageError{fmt.Errorf("kernel import --kernel: give a NAME")}
	}
	show, done := bytesPrinter(env)
	info, err := sendKernelFiles(cmd.Context(), env.Client, p, show)
	done()
	if err != nil {
		return err
	}
	printf(env.Out, "kernel %s ready (%s)\n", info.Name, info.Release)
	return nil
}

func newKernelLsCmd(env *Env) *cobra.Command {
	return newListCmd(env, "List kernels", (*client.Client).KernelList,
		[]string{"NAME", "RELEASE", "SOURCE", "CREATED"},
		func(k api.Kernel) []string {
			return []string{k.Name, k.Release, k.Source, k.CreatedAt.Format(time.DateTime)}
		})
}

func newKernelPullCmd(env *Env) *cobra.Command {
	var p api.PullKernelParams
	pull := &cobra.Command{
		Use:   "pull NAME",
		Short: "Install a kernel from the kernel catalog (sha256-pinned bundle, or a Debian package)",
		Args:  exactArgs(1, "a kernel catalog name"),
		RunE: func(cmd *cobra.Command, args []string) error {
			p.Ref = args[0]
			show, done := bytesPrinter(env)
			info, err := env.Client.KernelPull(cmd.Context(), p, show)
			done()
			if err != nil {
				return err
			}
			printf(env.Out, "kernel %s ready (%s)\n", info.Name, info.Release)
			return nil
		},
	}
	pull.Flags().StringVar(&p.Name, "name", "", "register under this name (default: the catalog name)")
	return pull
}

func newKernelShowCmd(env *Env) *cobra.Command {
	return newShowCmd(env, "Show a kernel: release, files, source and the VMs using it", "a kernel name", (*client.Client).KernelShow,
		func(info api.KernelInfo) [][2]string {
			return [][2]string{{"name", info.Name}, {"release", info.Release}, {"dir", info.Dir},
				{"files", strings.Join(info.Files, " ")}, {"source", info.Source}, {"digest", info.Digest},
				{"created", info.CreatedAt.Format(time.DateTime)}, {"used by", strings.Join(info.UsedBy, ", ")}}
		})
}

func newKernelDeleteCmd(env *Env) *cobra.Command {
	return &cobra.Command{
		Use:     "delete NAME",
		Aliases: []string{"rm"},
		Short:   "Delete a kernel (exact name; refused while a VM uses it)",
		Args:    exactArgs(1, "a kernel name"),
		RunE: func(cmd *cobra.Command, args []string) error {
			if err := env.Client.KernelDelete(cmd.Context(), args[0]); err != nil {
				return err
			}
			printf(env.Out, "kernel %s deleted\n", args[0])
			return nil
		},
	}
}
