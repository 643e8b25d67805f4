package cli

import (
	"context"
	"strings"
	"time"

	"github.com/banger-dev/banger/internal/api"
	"github.com/banger-dev/banger/internal/client"
	"github.com/spf13/cobra"
)

// Shell completion is cobra's (`banger completion bash|zsh|fish`); the
// names it offers come from the daemon: these commands' first argument,
// and these flags, complete from the list named.
var (
	vmNames     = names((*client.Client).VMList, func(v api.VM) string { return v.Name })
	imageNames  = names((*client.Client).ImageList, func(im api.Image) string { return im.Name })
	kernelNames = names((*client.Client).KernelList, func(k api.Kernel) string { return k.Name })

	nameArgCompletion = map[string]namesFunc{
		"banger vm show": vmNames, "banger vm ssh": vmNames, "banger vm exec": vmNames,
		"banger vm stop": vmNames, "banger vm start": vmNames, "banger vm restart": vmNames,
		"banger vm delete": vmNames, "banger vm set": vmNames, "banger vm stats": vmNames,
		"banger vm ports": vmNames, "banger vm logs": vmNames,
		"banger vm pause": vmNames, "banger vm resume": vmNames,
		"banger vm snapshot create": vmNames, "banger vm snapshot ls": vmNames,
		"banger vm workspace prepare": vmNames, "banger vm workspace export": vmNames,
		"banger image promote": vmNames,
		"banger vm forward":    vmNames, "banger vm forward ls": vmNames, "banger vm forward rm": vmNames,
		"banger image show": imageNames, "banger image delete": imageNames, "banger image export": imageNames,
		"banger kernel show": kernelNames, "banger kernel delete": kernelNames,
	}
	flagCompletion = map[string]map[string]namesFunc{
		"banger vm create":      {"image": imageNames},
		"banger vm run":         {"image": imageNames},
		"banger image register": {"kernel": kernelNames},
	}
)

// snapshotArgCompletion: the first argument is a VM, the second one of
// its snapshots.
var snapshotArgCompletion = map[string]bool{"banger vm snapshot restore": true, "banger vm snapshot rm": true}

func snapshotNames(vm string) namesFunc {
	return names(func(c *client.Client, ctx context.Context) ([]api.Snapshot, error) { return c.VMSnapshotList(ctx, vm) },
		func(s api.Snapshot) string { return s.Name })
}

// addCompletions attaches the name completions to the commands of the
// tree that exist.
func addCompletions(cl *client.Client, c *cobra.Command) {
	if list, ok := nameArgCompletion[c.CommandPath()]; ok && c.ValidArgsFunction == nil {
		c.ValidArgsFunction = func(cmd *cobra.Command, args []string, toComplete string) ([]cobra.Completion, cobra.ShellCompDirective) {
			if len(args) > 0 {
				return nil, cobra.ShellCompDirectiveDefault
			}
			return completeNames(cmd.Context(), cl, list, toComplete), cobra.ShellCompDirectiveNoFileComp
		}
	}
	if snapshotArgCompletion[c.CommandPath()] && c.ValidArgsFunction == nil {
		c.ValidArgsFunction = func(cmd *cobra.Command, args []string, toComplete string) ([]cobra.Completion, cobra.ShellCompDirective) {
			switch len(args) {
			case 0:
				return completeNames(cmd.Context(), cl, vmNames, toComplete), cobra.ShellCompDirectiveNoFileComp
			case 1:
				return completeNames(cmd.Context(), cl, snapshotNames(args[0]), toComplete), cobra.ShellCompDirectiveNoFileComp
			}
			return nil, cobra.ShellCompDirectiveNoFileComp
		}
	}
	for flag, list := range flagCompletion[c.CommandPath()] {
		if c.Flags().Lookup(flag) == nil {
			continue
		}
		_ = c.RegisterFlagCompletionFunc(flag, func(cmd *cobra.Command, args []string, toComplete string) ([]cobra.Completion, cobra.ShellCompDirective) {
			return completeNames(cmd.Context(), cl, list, toComplete), cobra.ShellCompDirectiveNoFileComp
		})
	}
	for _, s := range c.Commands() {
		addCompletions(cl, s)
	}
}

// completeNames asks the daemon for names starting with prefix. It never
// starts the daemon (a Tab press must not boot anything) and returns
// nothing on any error; it gives up after two seconds.
func completeNames(ctx context.Context, cl *client.Client, list namesFunc, prefix string) []cobra.Completion {
	if ctx == nil {
		ctx = context.Background()
	}
	ctx, cancel := context.WithTimeout(ctx, 2*time.Second)
	defer cancel()
	c := *cl
	c.AutoStart = false
	all, err := list(&c, ctx)
	if err != nil {
		return nil
	}
	var out []cobra.Completion
	for _, name := range all {
		if strings.HasPrefix(name, prefix) && escCell(name) == name {
			out = append(out, name)
		}
	}
	return out
}

// namesFunc lists the names of one kind of thing the daemon keeps.
type namesFunc func(*client.Client, context.Context) ([]string, error)

// names turns a typed list call into a namesFunc.
func names[T any](list func(*client.Client, context.Context) ([]T, error), name func(T) string) namesFunc {
	return func(c *client.Client, ctx context.Context) ([]string, error) {
		items, err := list(c, ctx)
		if err != nil {
			return nil, err
		}
		out := make([]string, len(items))
		for i, it := range items {
			out[i] = name(it)
		}
		return out, nil
	}
}
