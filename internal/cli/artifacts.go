package cli

import (
	"fmt"
	"text/tabwriter"
	"time"

	"github.com/banger-dev/banger/internal/api"
	"github.com/banger-dev/banger/internal/config"
	"github.com/spf13/cobra"
)

func newImageCmd(env *Env) *cobra.Command {
	cmd := &cobra.Command{Use: "image", Short: "Build and list root filesystem images"}
	var force bool
	build := &cobra.Command{
		Use:   "build [NAME]",
		Short: "Build the golden Debian bookworm image from Debian packages (mmdebstrap)",
		Long: `Build the golden image (systemd, openssh-server, git, curl, sudo, ...) from
Debian's packages with mmdebstrap and register it as NAME (default
` + config.DefaultImageName + `). The build is cached: registering again reuses it
unless --force is given.`,
		Args: cobraMaxArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			p := api.BuildImageParams{Force: force}
			if len(args) == 1 {
				p.Name = args[0]
			}
			show, done := progressPrinter(env)
			var im api.Image
			err := env.Client.Call(cmd.Context(), api.MethodImageBuild, p, &im, show)
			done()
			if err != nil {
				return err
			}
			fmt.Fprintf(env.Out, "image %s ready (%s, %s)\n", im.Name, config.FormatSize(im.SizeBytes), im.Path)
			return nil
		},
	}
	build.Flags().BoolVar(&force, "force", false, "rebuild even when a cached build exists")
	var asJSON bool
	ls := &cobra.Command{
		Use:     "ls",
		Aliases: []string{"list"},
		Short:   "List images",
		Args:    exactArgs(0, "no arguments"),
		RunE: func(cmd *cobra.Command, args []string) error {
			var ims []api.Image
			if err := env.Client.Call(cmd.Context(), api.MethodImageList, nil, &ims, nil); err != nil {
				return err
			}
			if asJSON {
				return printJSON(env.Out, ims)
			}
			tw := tabwriter.NewWriter(env.Out, 0, 4, 2, ' ', 0)
			fmt.Fprintln(tw, "NAME\tSIZE\tSOURCE\tCREATED")
			for _, im := range ims {
				fmt.Fprintf(tw, "%s\t%s\t%s\t%s\n", im.Name, config.FormatSize(im.SizeBytes), im.Source, im.CreatedAt.Format(time.DateTime))
			}
			return tw.Flush()
		},
	}
	ls.Flags().BoolVar(&asJSON, "json", false, "print JSON")
	cmd.AddCommand(build, ls)
	return cmd
}

func newKernelCmd(env *Env) *cobra.Command {
	cmd := &cobra.Command{Use: "kernel", Short: "Import and list guest kernels"}
	var p api.ImportKernelParams
	imp := &cobra.Command{
		Use:   "import [NAME]",
		Short: "Import a Debian kernel package (default: the cloud kernel) with a generated initramfs",
		Long: `Download Debian's cloud kernel (linux-image-cloud-amd64) with apt-get, or
take --package or a local --deb, and register it as NAME (default
` + config.DefaultKernelName + `). The virtio, overlayfs and ext4 modules it needs
are packed for the initramfs that banger-agent runs as /init.`,
		Args: cobraMaxArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			if len(args) == 1 {
				p.Name = args[0]
			}
			show, done := progressPrinter(env)
			var k api.Kernel
			err := env.Client.Call(cmd.Context(), api.MethodKernelImport, p, &k, show)
			done()
			if err != nil {
				return err
			}
			fmt.Fprintf(env.Out, "kernel %s ready (%s)\n", k.Name, k.Release)
			return nil
		},
	}
	imp.Flags().StringVar(&p.Package, "package", "", "Debian package to download (e.g. linux-image-6.1.0-26-cloud-amd64)")
	imp.Flags().StringVar(&p.DebFile, "deb", "", "import a local .deb file instead of downloading")
	var asJSON bool
	ls := &cobra.Command{
		Use:     "ls",
		Aliases: []string{"list"},
		Short:   "List kernels",
		Args:    exactArgs(0, "no arguments"),
		RunE: func(cmd *cobra.Command, args []string) error {
			var ks []api.Kernel
			if err := env.Client.Call(cmd.Context(), api.MethodKernelList, nil, &ks, nil); err != nil {
				return err
			}
			if asJSON {
				return printJSON(env.Out, ks)
			}
			tw := tabwriter.NewWriter(env.Out, 0, 4, 2, ' ', 0)
			fmt.Fprintln(tw, "NAME\tRELEASE\tSOURCE\tCREATED")
			for _, k := range ks {
				fmt.Fprintf(tw, "%s\t%s\t%s\t%s\n", k.Name, k.Release, k.Source, k.CreatedAt.Format(time.DateTime))
			}
			return tw.Flush()
		},
	}
	ls.Flags().BoolVar(&asJSON, "json", false, "print JSON")
	cmd.AddCommand(imp, ls)
	return cmd
}

func cobraMaxArgs(n int) cobra.PositionalArgs {
	return func(cmd *cobra.Command, args []string) error {
		if len(args) > n {
			return usageError{fmt.Errorf("%s: at most %d argument(s) (see `%s --help`)", cmd.CommandPath(), n, cmd.CommandPath())}
		}
		return nil
	}
}
