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

func newImageCmd(env *Env) *cobra.Command {
	cmd := &cobra.Command{Use: "image", Short: "Pull, build, register, promote, export and list root filesystem images"}
	cmd.AddCommand(newImageBuildCmd(env), newImageLsCmd(env), newImagePullCmd(env), newImageShowCmd(env),
		newImageDeleteCmd(env), newImageRegisterCmd(env), newImagePromoteCmd(env), newImageExportCmd(env),
		newCatalogCmd(env, (*client.Client).ImageCatalog, "images"))
	return cmd
}

func newImageBuildCmd(env *Env) *cobra.Command {
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
			im, err := env.Client.ImageBuild(cmd.Context(), p, show)
			done()
			if err != nil {
				return err
			}
			printf(env.Out, "image %s ready (%s, %s)\n", im.Name, config.FormatSize(im.SizeBytes), im.Path)
			return nil
		},
	}
	build.Flags().BoolVar(&force, "force", false, "rebuild even when a cached build exists")
	return build
}

func newImageLsCmd(env *Env) *cobra.Command {
	return newListCmd(env, "List images", (*client.Client).ImageList,
		[]string{"NAME", "SIZE", "SOURCE", "CREATED"},
		func(im api.Image) []string {
			return []string{im.Name, config.FormatSize(im.SizeBytes), im.Source, im.CreatedAt.Format(time.DateTime)}
		})
}

func newImagePullCmd(env *Env) *cobra.Command {
	var p api.PullImageParams
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
			show, done := bytesPrinter(env)
			info, err := env.Client.ImagePull(cmd.Context(), p, show)
			done()
			if err != nil {
				return withLowercaseHint(p.Ref, err)
			}
			printNotes(env, info.Notes)
			printf(env.Out, "image %s ready (%s, %s)\n", info.Name, config.FormatSize(info.SizeBytes), info.Source)
			return nil
		},
	}
	pull.Flags().StringVar(&p.Name, "name", "", "register under this name (default: the catalog name, or derived from REF)")
	return pull
}

func newImageShowCmd(env *Env) *cobra.Command {
	return newShowCmd(env, "Show an image: where it came from, its kernel, init, sshd, runtime config and the VMs using it", "an image name", (*client.Client).ImageShow,
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

func newImageDeleteCmd(env *Env) *cobra.Command {
	return &cobra.Command{
		Use:     "delete NAME",
		Aliases: []string{"rm"},
		Short:   "Delete an image (exact name; refused while a VM uses it)",
		Args:    exactArgs(1, "an image name"),
		RunE: func(cmd *cobra.Command, args []string) error {
			if err := env.Client.ImageDelete(cmd.Context(), args[0]); err != nil {
				return err
			}
			printf(env.Out, "image %s deleted\n", args[0])
			return nil
		},
	}
}

func newImageRegisterCmd(env *Env) *cobra.Command {
	var p api.RegisterImageParams
	reg := &cobra.Command{
		Use:   "register NAME --rootfs FILE [--kernel K]",
		Short: "Register a local ext4 filesystem image",
		Args:  exactArgs(1, "an image name"),
		RunE: func(cmd *cobra.Command, args []string) error {
			p.Name = args[0]
			if p.Rootfs == "" {
				return usageError{fmt.Errorf("image register: --rootfs FILE is required")}
			}
			show, done := bytesPrinter(env)
			info, err := registerRootfs(cmd.Context(), env.Client, p, show)
			done()
			if err != nil {
				return err
			}
			printNotes(env, info.Notes)
			printf(env.Out, "image %s registered (%s)\n", info.Name, config.FormatSize(info.SizeBytes))
			return nil
		},
	}
	reg.Flags().StringVar(&p.Rootfs, "rootfs", "", "ext4 image file (sent to the daemon, which keeps a copy)")
	reg.Flags().StringVar(&p.Kernel, "kernel", "", "kernel to boot it with (default: the default kernel)")
	return reg
}

func newImagePromoteCmd(env *Env) *cobra.Command {
	var p api.PromoteImageParams
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
			show, done := bytesPrinter(env)
			info, err := env.Client.ImagePromote(cmd.Context(), p, show)
			done()
			if err != nil {
				return err
			}
			printNotes(env, info.Notes)
			printf(env.Out, "image %s ready (%s)\n", info.Name, config.FormatSize(info.SizeBytes))
			return nil
		},
	}
	promote.Flags().StringVar(&p.Name, "name", "", "name of the new image")
	return promote
}

func newImageExportCmd(env *Env) *cobra.Command {
	var p api.ExportImageParams
	var out, catalog string
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
			if out == "" {
				return usageError{fmt.Errorf("image export: -o BUNDLE.tar.zst is required")}
			}
			show, done := bytesPrinter(env)
			res, err := exportBundle(cmd.Context(), env.Client, p, out, catalog, show)
			done()
			if err != nil {
				return err
			}
			printf(env.Out, "wrote %s (%s, sha256 %s)\ncatalog entry %q added to %s\n", res.Bundle,
				config.FormatSize(res.Entry.Size), res.Entry.SHA256, res.Entry.Name, res.Catalog)
			return nil
		},
	}
	export.Flags().StringVarP(&out, "output", "o", "", "bundle file to write (.tar.zst)")
	export.Flags().StringVar(&catalog, "catalog", "", "catalog file to add the entry to (default: catalog.json beside the bundle)")
	export.Flags().StringVar(&p.URL, "url", "", "the bundle's URL in the entry (default: relative to the catalog)")
	return export
}

// newCatalogCmd lists the image or kernel catalog.
func newCatalogCmd(env *Env, catalog func(*client.Client, context.Context) (api.CatalogList, error), what string) *cobra.Command {
	var asJSON bool
	c := &cobra.Command{
		Use:   "catalog",
		Short: "List the " + what + " the catalog offers (built-in, or the config's)",
		Args:  exactArgs(0, "no arguments"),
		RunE: func(cmd *cobra.Command, args []string) error {
			l, err := catalog(env.Client, cmd.Context())
			if err != nil {
				return err
			}
			if asJSON {
				return printJSON(env.Out, l)
			}
			printf(env.Out, "catalog: %s\n", l.Source)
			t := newTable(env.Out)
			t.row("NAME", "HERE", "FROM", "DESCRIPTION")
			for _, e := range l.Entries {
				from := e.URL + e.Ref
				switch {
				case e.Build != "":
					from = "build " + e.Build
				case from == "":
					from = "apt " + e.Package
				}
				t.row(e.Name, yesNo(e.Installed), from, e.Description)
			}
			return t.flush()
		},
	}
	c.Flags().BoolVar(&asJSON, "json", false, "print JSON")
	return c
}

func cobraMaxArgs(n int) cobra.PositionalArgs {
	return func(cmd *cobra.Command, args []string) error {
		if len(args) > n {
			return usageError{fmt.Errorf("%s: at most %d argument(s) (see `%s --help`)", verb(cmd), n, cmd.CommandPath())}
		}
		return nil
	}
}
