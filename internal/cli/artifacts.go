package cli

import (
	"context"
	"fmt"
	"strings"
	"time"

	"github.com/banger-dev/banger/internal/api"
	"github.com/banger-dev/banger/internal/client"
	"github.com/banger-dev/banger/internal/config"
	"github.com/spf13/cobra"
)

func newImageCmd(f *factory) *cobra.Command {
	cmd := &cobra.Command{Use: "image", Short: "Pull, build, register, promote, export and list root filesystem images"}
	cmd.AddCommand(newImageBuildCmd(f), newImageLsCmd(f), newImagePullCmd(f, nil), newImageShowCmd(f),
		newImageDeleteCmd(f), newImageRegisterCmd(f, nil), newImagePromoteCmd(f, nil), newImageExportCmd(f, nil),
		newCatalogCmd(f, (*client.Client).ImageCatalog, "images"))
	return cmd
}

func newImageBuildCmd(f *factory) *cobra.Command {
	var force bool
	build := &cobra.Command{
		Use:   "build [NAME]",
		Short: "Build a Debian bookworm image from Debian packages (mmdebstrap)",
		Long: `Build an image from Debian's packages with mmdebstrap and register it as
NAME (default ` + config.DefaultImageName + `). NAME debian-bookworm-dev builds the
development image (Docker, compose, build-essential, tmux, python3, node,
ripgrep, jq; several minutes); any other NAME gets the default image
(systemd, openssh-server, git, curl, sudo, ...). Builds are cached:
registering again reuses one unless --force is given.

  banger image build                       # debian-bookworm
  banger image build debian-bookworm-dev   # what --image debian-bookworm-dev also does on first use`,
		Args: cobraMaxArgs(1),
		// The images built here (the catalog's "build" entries).
		ValidArgs: []cobra.Completion{config.DefaultImageName, "debian-bookworm-dev"},
		RunE: func(cmd *cobra.Command, args []string) error {
			p := api.BuildImageParams{Force: force}
			if len(args) == 1 {
				p.Name = args[0]
			}
			show, done := progressPrinter(f.IO)
			im, err := f.Client.ImageBuild(cmd.Context(), p, show)
			done()
			if err != nil {
				return err
			}
			printf(f.IO.Out, "image %s ready (%s, %s)\n", im.Name, config.FormatSize(im.SizeBytes), im.Path)
			return nil
		},
	}
	build.Flags().BoolVar(&force, "force", false, "rebuild even when a cached build exists")
	return build
}

func newImageLsCmd(f *factory) *cobra.Command {
	return newListCmd(f, "List images", (*client.Client).ImageList,
		[]string{"NAME", "SIZE", "SOURCE", "CREATED"},
		func(im api.Image) []string {
			return []string{im.Name, config.FormatSize(im.SizeBytes), im.Source, im.CreatedAt.Format(time.DateTime)}
		})
}

// imagePullOptions are `image pull`'s flags and argument, and what it
// needs.
type imagePullOptions struct {
	IO     *iostreams
	Client interface {
		ImagePull(context.Context, api.PullImageParams, func(api.Progress)) (api.ImageInfo, error)
	}

	Params api.PullImageParams
}

// newImagePullCmd builds `image pull`; runF, when set, runs instead of
// imagePullRun.
func newImagePullCmd(f *factory, runF func(*imagePullOptions) error) *cobra.Command {
	opts := &imagePullOptions{IO: f.IO, Client: f.Client}
	p := &opts.Params
	pull := &cobra.Command{
		Use:   "pull REF",
		Short: "Pull an image: a catalog name, or any OCI/Docker image reference",
		Long: `Pull REF and register it as an image.

REF naming an entry of the image catalog (` + "`banger image catalog`" + `) downloads its
bundle, checks its sha256 and registers it with the kernel it names. Any
other REF is an OCI reference (debian:bookworm-slim, ghcr.io/org/app:v1,
registry:5000/app@sha256:...), pulled for linux/amd64 with the credentials
of your docker config and credential helpers, and flattened into an ext4
image: whiteouts, ownership, modes, links and xattrs are kept, device
nodes are skipped, and entries escaping the image are refused.

Nothing is installed into the image: banger's agent boots from the
initramfs. An image without an init system runs with the agent as PID 1
(` + "`banger vm run -- CMD`" + ` works); one without sshd cannot be reached with
` + "`banger vm ssh`" + `. An interrupted pull keeps the layers it downloaded; pulling
again resumes from them.`,
		Example: "  banger image pull debian-slim\n  banger image pull docker.io/library/alpine:3.20 --name alpine\n  banger vm run --image alpine -- cat /etc/os-release",
		Args:    exactArgs(1, "an image reference"),
		RunE: func(cmd *cobra.Command, args []string) error {
			p.Ref = args[0]
			if runF != nil {
				return runF(opts)
			}
			return imagePullRun(cmd.Context(), opts)
		},
	}
	pull.Flags().StringVar(&p.Name, "name", "", "register under this name (default: the catalog name, or derived from REF)")
	return pull
}

// imagePullRun pulls the image, showing byte progress.
func imagePullRun(ctx context.Context, opts *imagePullOptions) error {
	p := opts.Params
	show, done := bytesPrinter(opts.IO)
	info, err := opts.Client.ImagePull(ctx, p, show)
	done()
	if err != nil {
		return withLowercaseHint(p.Ref, err)
	}
	printNotes(opts.IO, info.Notes)
	printf(opts.IO.Out, "image %s ready (%s, %s)\n", info.Name, config.FormatSize(info.SizeBytes), info.Source)
	return nil
}

func newImageShowCmd(f *factory) *cobra.Command {
	return newShowCmd(f, "Show an image: where it came from, its kernel, init, sshd, runtime config and the VMs using it", "an image name", (*client.Client).ImageShow,
		func(info api.ImageInfo) [][2]string {
			init := info.Init
			switch init {
			case "":
				init = "/sbin/init if present (not recorded)"
			case "none":
				init = "none: banger-agent stays PID 1"
			}
			kern := info.Kernel
			if kern == "" {
				kern = "(the default kernel)"
			}
			usedBy := ""
			if len(info.UsedBy) > 0 {
				usedBy = fmt.Sprint(info.UsedBy)
			}
			return [][2]string{
				{"name", info.Name}, {"size", config.FormatSize(info.SizeBytes)}, {"path", info.Path}, {"source", info.Source},
				{"ref", info.Ref}, {"digest", info.Digest}, {"kernel", kern}, {"init", init}, {"sshd", yesNo(info.HasSSHD)},
				{"env", shellWords(info.Runtime.Env)}, {"workdir", info.Runtime.WorkingDir},
				{"entrypoint", shellWords(info.Runtime.Entrypoint)}, {"cmd", shellWords(info.Runtime.Cmd)},
				{"user", info.Runtime.User},
				{"created", info.CreatedAt.Format(time.DateTime)}, {"used by", usedBy},
			}
		})
}

// withLowercaseHint adds to a failed pull of a reference whose name has
// uppercase letters that references are lowercase (a tag may have them).
func withLowercaseHint(ref string, err error) error {
	name, rest := ref, ""
	if i := strings.IndexAny(ref, "@"); i >= 0 {
		name, rest = ref[:i], ref[i:]
	}
	if i := strings.LastIndex(name, ":"); i > strings.LastIndex(name, "/") {
		name, rest = name[:i], name[i:]+rest
	}
	if name == strings.ToLower(name) {
		return err
	}
	return fmt.Errorf("%w (image names are lowercase: try %s)", err, strings.ToLower(name)+rest)
}

// shellWords renders words as a POSIX shell would need them typed:
// plain when safe, else single-quoted.
func shellWords(words []string) string {
	out := make([]string, len(words))
	for i, w := range words {
		out[i] = w
		if w == "" || strings.ContainsFunc(w, func(r rune) bool {
			return !(r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || strings.ContainsRune("-_./:=,+@%", r))
		}) {
			out[i] = "'" + strings.ReplaceAll(w, "'", `'\''`) + "'"
		}
	}
	return strings.Join(out, " ")
}

func yesNo(b bool) string {
	if b {
		return "yes"
	}
	return "no"
}

func newImageDeleteCmd(f *factory) *cobra.Command {
	return &cobra.Command{
		Use:     "delete NAME",
		Aliases: []string{"rm"},
		Short:   "Delete an image (exact name; refused while a VM uses it)",
		Args:    exactArgs(1, "an image name"),
		RunE: func(cmd *cobra.Command, args []string) error {
			if err := f.Client.ImageDelete(cmd.Context(), args[0]); err != nil {
				return err
			}
			printf(f.IO.Out, "image %s deleted\n", args[0])
			return nil
		},
	}
}

// imageRegisterOptions are `image register`'s flags and argument, checked, and
// what it needs.
type imageRegisterOptions struct {
	IO     *iostreams
	Client *client.Client

	Params api.RegisterImageParams
}

// newImageRegisterCmd builds `image register`; runF, when set, runs instead of
// imageRegisterRun.
func newImageRegisterCmd(f *factory, runF func(*imageRegisterOptions) error) *cobra.Command {
	opts := &imageRegisterOptions{IO: f.IO, Client: f.Client}
	p := &opts.Params
	reg := &cobra.Command{
		Use:   "register NAME --rootfs FILE [--kernel K]",
		Short: "Register a local ext4 filesystem image",
		Args:  exactArgs(1, "an image name"),
		RunE: func(cmd *cobra.Command, args []string) error {
			p.Name = args[0]
			if p.Rootfs == "" {
				return usageError{fmt.Errorf("image register: --rootfs FILE is required")}
			}
			if runF != nil {
				return runF(opts)
			}
			return imageRegisterRun(cmd.Context(), opts)
		},
	}
	reg.Flags().StringVar(&p.Rootfs, "rootfs", "", "ext4 image file (sent to the daemon, which keeps a copy)")
	reg.Flags().StringVar(&p.Kernel, "kernel", "", "kernel to boot it with (default: the default kernel)")
	return reg
}

// imageRegisterRun registers the filesystem image.
func imageRegisterRun(ctx context.Context, opts *imageRegisterOptions) error {
	show, done := bytesPrinter(opts.IO)
	info, err := registerRootfs(ctx, opts.Client, opts.Params, show)
	done()
	if err != nil {
		return err
	}
	printNotes(opts.IO, info.Notes)
	printf(opts.IO.Out, "image %s registered (%s)\n", info.Name, config.FormatSize(info.SizeBytes))
	return nil
}

// imagePromoteOptions are `image promote`'s flags and argument, checked, and
// what it needs.
type imagePromoteOptions struct {
	IO     *iostreams
	Client interface {
		ImagePromote(context.Context, api.PromoteImageParams, func(api.Progress)) (api.ImageInfo, error)
	}

	Params api.PromoteImageParams
}

// newImagePromoteCmd builds `image promote`; runF, when set, runs instead of
// imagePromoteRun.
func newImagePromoteCmd(f *factory, runF func(*imagePromoteOptions) error) *cobra.Command {
	opts := &imagePromoteOptions{IO: f.IO, Client: f.Client}
	p := &opts.Params
	promote := &cobra.Command{
		Use:   "promote VM --name NEW",
		Short: "Turn a stopped VM's disk state (its image plus its changes to /) into a new image",
		Long: `Merge the VM's root filesystem changes (its overlay disk) onto the image it
was created from, into a new image NEW. The VM must be stopped. /root (the
VM's work disk) is not part of it.`,
		Args: exactArgs(1, "a VM name"),
		RunE: func(cmd *cobra.Command, args []string) error {
			p.VM = args[0]
			if p.Name == "" {
				return usageError{fmt.Errorf("image promote: --name NEW is required")}
			}
			if runF != nil {
				return runF(opts)
			}
			return imagePromoteRun(cmd.Context(), opts)
		},
	}
	promote.Flags().StringVar(&p.Name, "name", "", "name of the new image")
	return promote
}

// imagePromoteRun merges the VM's changes into a new image.
func imagePromoteRun(ctx context.Context, opts *imagePromoteOptions) error {
	p := opts.Params
	show, done := bytesPrinter(opts.IO)
	info, err := opts.Client.ImagePromote(ctx, p, show)
	done()
	if err != nil {
		return err
	}
	printNotes(opts.IO, info.Notes)
	printf(opts.IO.Out, "image %s ready (%s)\n", info.Name, config.FormatSize(info.SizeBytes))
	return nil
}

// imageExportOptions are `image export`'s flags and argument, checked, and
// what it needs.
type imageExportOptions struct {
	IO     *iostreams
	Client *client.Client

	Params       api.ExportImageParams
	Out, Catalog string // the bundle and catalog files to write (-o, --catalog)
}

// newImageExportCmd builds `image export`; runF, when set, runs instead of
// imageExportRun.
func newImageExportCmd(f *factory, runF func(*imageExportOptions) error) *cobra.Command {
	opts := &imageExportOptions{IO: f.IO, Client: f.Client}
	p := &opts.Params
	export := &cobra.Command{
		Use:   "export NAME -o BUNDLE.tar.zst [--catalog FILE] [--url URL]",
		Short: "Write an image as a bundle and add it to a catalog file, to publish as static files",
		Long: `Write the image as a bundle (zstd-compressed tar of manifest.json and
rootfs.ext4) and add its entry (URL, sha256, size, kernel) to a catalog
file — by default catalog.json beside the bundle, with the bundle's URL
relative to it. Serve the directory over HTTP(S) and point other machines'
image_catalog at its catalog.json; ` + "`banger image pull NAME`" + ` then fetches it.
The daemon streams the bundle here: both files are written by this
command, each replaced whole or not at all.`,
		Args: exactArgs(1, "an image name"),
		RunE: func(cmd *cobra.Command, args []string) error {
			p.Name = args[0]
			if opts.Out == "" {
				return usageError{fmt.Errorf("image export: -o BUNDLE.tar.zst is required")}
			}
			if runF != nil {
				return runF(opts)
			}
			return imageExportRun(cmd.Context(), opts)
		},
	}
	export.Flags().StringVarP(&opts.Out, "output", "o", "", "bundle file to write (.tar.zst)")
	export.Flags().StringVar(&opts.Catalog, "catalog", "", "catalog file to add the entry to (default: catalog.json beside the bundle)")
	export.Flags().StringVar(&p.URL, "url", "", "the bundle's URL in the entry (default: relative to the catalog)")
	return export
}

// imageExportRun writes the bundle and its catalog entry.
func imageExportRun(ctx context.Context, opts *imageExportOptions) error {
	show, done := bytesPrinter(opts.IO)
	res, err := exportBundle(ctx, opts.Client, opts.Params, opts.Out, opts.Catalog, show)
	done()
	if err != nil {
		return err
	}
	printf(opts.IO.Out, "wrote %s (%s, sha256 %s)\ncatalog entry %q added to %s\n", res.Bundle,
		config.FormatSize(res.Entry.Size), res.Entry.SHA256, res.Entry.Name, res.Catalog)
	return nil
}

func cobraMaxArgs(n int) cobra.PositionalArgs {
	return func(cmd *cobra.Command, args []string) error {
		if len(args) > n {
			return usageError{fmt.Errorf("%s: at most %d argument(s) (see `%s --help`)", verb(cmd), n, cmd.CommandPath())}
		}
		return nil
	}
}
