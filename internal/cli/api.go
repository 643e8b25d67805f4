package cli

import (
	"context"
	"errors"
	"time"

	"github.com/banger-dev/banger/internal/api"
	"github.com/banger-dev/banger/internal/client"
	"github.com/spf13/cobra"
)

// banger api key create|ls|rm: the HTTP API's keys (issue 15).

func newAPICmd(f *factory) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "api",
		Short: "The HTTP API for programs (E2B-compatible): its keys",
		Long: `bangerd serves an HTTP API for programs when config.toml sets it:

  [api]
  listen = "127.0.0.1:3000"   # a non-loopback address needs tls_cert and tls_key

It speaks E2B's API, so code written for E2B's SDKs runs on banger's VMs:

  export E2B_API_URL=http://127.0.0.1:3000 E2B_SANDBOX_URL=http://127.0.0.1:3000
  export E2B_API_KEY=$(banger api key create --name ci --quiet)

Every request needs a key. The daemon serves one user: every key acts as
that user, on all of that user's VMs.`,
	}
	key := &cobra.Command{
		Use:   "key",
		Short: "Create, list and revoke the HTTP API's keys",
	}
	key.AddCommand(newAPIKeyCreateCmd(f, nil), newAPIKeyListCmd(f, nil), newAPIKeyRmCmd(f, nil))
	cmd.AddCommand(key)
	return cmd
}

// apiKeyCreateOptions are `api key create`'s.
type apiKeyCreateOptions struct {
	IO     *iostreams
	Client interface {
		APIKeyCreate(context.Context, string) (api.APIKeyCreated, error)
	}
	Name  string
	JSON  bool
	Quiet bool
}

func newAPIKeyCreateCmd(f *factory, runF func(*apiKeyCreateOptions) error) *cobra.Command {
	opts := &apiKeyCreateOptions{IO: f.IO, Client: f.Client}
	cmd := &cobra.Command{
		Use:   "create [--name NAME] [--quiet|--json]",
		Short: "Make a key for the HTTP API and print it (once)",
		Long: `Make a key for the HTTP API and print it. The key is shown this once: banger
keeps only its SHA-256, so a lost key cannot be shown again (make another, and
` + "`banger api key rm`" + ` the lost one). Programs send it as X-API-KEY (E2B's SDKs:
E2B_API_KEY).`,
		Example: "  export E2B_API_KEY=$(banger api key create --name ci --quiet)",
		Args:    exactArgs(0, "no arguments"),
		RunE: func(cmd *cobra.Command, args []string) error {
			if opts.Quiet && opts.JSON {
				return usageError{errors.New("api key create: --quiet and --json are two ways to print the key: choose one")}
			}
			if runF != nil {
				return runF(opts)
			}
			return apiKeyCreateRun(cmd.Context(), opts)
		},
	}
	cmd.Flags().StringVar(&opts.Name, "name", "", "the key's name, for ls and rm (default: one from the time)")
	cmd.Flags().BoolVarP(&opts.Quiet, "quiet", "q", false, "print only the key")
	cmd.Flags().BoolVar(&opts.JSON, "json", false, "print the key and its name as JSON")
	return cmd
}

func apiKeyCreateRun(ctx context.Context, opts *apiKeyCreateOptions) error {
	k, err := opts.Client.APIKeyCreate(ctx, opts.Name)
	if err != nil {
		return err
	}
	switch {
	case opts.JSON:
		return printJSON(opts.IO.Out, k)
	case opts.Quiet:
		printf(opts.IO.Out, "%s\n", k.Key)
	default:
		printf(opts.IO.Out, "%s\n", k.Key)
		printf(opts.IO.Err, "API key %q created: it is shown only now (banger keeps its hash)\n", k.Name)
	}
	return nil
}

// apiKeyListOptions are `api key ls`'s.
type apiKeyListOptions struct {
	IO     *iostreams
	Client interface {
		APIKeyList(context.Context) ([]api.APIKey, error)
	}
	JSON bool
}

func newAPIKeyListCmd(f *factory, runF func(*apiKeyListOptions) error) *cobra.Command {
	opts := &apiKeyListOptions{IO: f.IO, Client: f.Client}
	cmd := &cobra.Command{
		Use:     "ls [--json]",
		Aliases: []string{"list"},
		Short:   "List the HTTP API's keys (names and first characters, never the keys)",
		Args:    exactArgs(0, "no arguments"),
		RunE: func(cmd *cobra.Command, args []string) error {
			if runF != nil {
				return runF(opts)
			}
			return apiKeyListRun(cmd.Context(), opts)
		},
	}
	cmd.Flags().BoolVar(&opts.JSON, "json", false, "print JSON")
	return cmd
}

func apiKeyListRun(ctx context.Context, opts *apiKeyListOptions) error {
	keys, err := opts.Client.APIKeyList(ctx)
	if err != nil {
		return err
	}
	if opts.JSON {
		return printJSON(opts.IO.Out, keys)
	}
	t := newTable(opts.IO.Out)
	t.row("NAME", "KEY", "CREATED", "LAST USED")
	for _, k := range keys {
		used := "never"
		if !k.LastUsed.IsZero() {
			used = k.LastUsed.Local().Format(time.DateTime)
		}
		t.row(k.Name, k.Prefix+"…", k.CreatedAt.Local().Format(time.DateTime), used)
	}
	return t.flush()
}

// apiKeyRmOptions are `api key rm`'s.
type apiKeyRmOptions struct {
	IO     *iostreams
	Client interface {
		APIKeyDelete(context.Context, string) (api.APIKey, error)
		APIKeyList(context.Context) ([]api.APIKey, error)
	}
	Name string
}

func newAPIKeyRmCmd(f *factory, runF func(*apiKeyRmOptions) error) *cobra.Command {
	opts := &apiKeyRmOptions{IO: f.IO, Client: f.Client}
	cmd := &cobra.Command{
		Use:     "rm NAME",
		Aliases: []string{"delete", "revoke"},
		Short:   "Revoke an HTTP API key: requests that carry it get 401 from now on",
		Args:    exactArgs(1, "one key name (`banger api key ls`)"),
		RunE: func(cmd *cobra.Command, args []string) error {
			opts.Name = args[0]
			if runF != nil {
				return runF(opts)
			}
			return apiKeyRmRun(cmd.Context(), opts)
		},
		ValidArgsFunction: func(cmd *cobra.Command, args []string, toComplete string) ([]cobra.Completion, cobra.ShellCompDirective) {
			if len(args) > 0 {
				return nil, cobra.ShellCompDirectiveNoFileComp
			}
			return completeNames(cmd.Context(), f.Client, names(func(c *client.Client, ctx context.Context) ([]api.APIKey, error) { return c.APIKeyList(ctx) },
				func(k api.APIKey) string { return k.Name }), toComplete), cobra.ShellCompDirectiveNoFileComp
		},
	}
	return cmd
}

func apiKeyRmRun(ctx context.Context, opts *apiKeyRmOptions) error {
	k, err := opts.Client.APIKeyDelete(ctx, opts.Name)
	if err != nil {
		return err
	}
	printf(opts.IO.Out, "API key %s (%s…) revoked\n", k.Name, k.Prefix)
	return nil
}
