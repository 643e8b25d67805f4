package cli

import (
	"context"
	"strings"
	"time"

	"github.com/banger-dev/banger/internal/api"
	"github.com/spf13/cobra"
)

// Shell completion is cobra's (`banger completion bash|zsh|fish`); the
// names it offers come from the daemon: these commands' first argument,
// and these flags, complete from the list method named.
var (
	nameArgCompletion = map[string]string{
		"banger vm show": api.MethodVMList, "banger vm ssh": api.MethodVMList, "banger vm exec": api.MethodVMList,
		"banger vm stop": api.MethodVMList, "banger vm start": api.MethodVMList, "banger vm restart": api.MethodVMList,
		"banger vm delete": api.MethodVMList, "banger vm set": api.MethodVMList, "banger vm stats": api.MethodVMList,
		"banger vm ports": api.MethodVMList, "banger vm logs": api.MethodVMList,
		"banger vm workspace prepare": api.MethodVMList, "banger vm workspace export": api.MethodVMList,
		"banger image promote": api.MethodVMList,
		"banger image show":    api.MethodImageList, "banger image delete": api.MethodImageList, "banger image export": api.MethodImageList,
		"banger kernel show": api.MethodKernelList, "banger kernel delete": api.MethodKernelList,
	}
	flagCompletion = map[string]map[string]string{
		"banger vm create":      {"image": api.MethodImageList},
		"banger vm run":         {"image": api.MethodImageList},
		"banger image register": {"kernel": api.MethodKernelList},
	}
)

// addCompletions attaches the name completions to the commands of the
// tree that exist (others' files register theirs from init).
func addCompletions(env *Env, c *cobra.Command) {
	if method, ok := nameArgCompletion[c.CommandPath()]; ok && c.ValidArgsFunction == nil {
		c.ValidArgsFunction = func(cmd *cobra.Command, args []string, toComplete string) ([]cobra.Completion, cobra.ShellCompDirective) {
			if len(args) > 0 {
				return nil, cobra.ShellCompDirectiveDefault
			}
			return completeNames(cmd.Context(), env, method, toComplete), cobra.ShellCompDirectiveNoFileComp
		}
	}
	for flag, method := range flagCompletion[c.CommandPath()] {
		if c.Flags().Lookup(flag) == nil {
			continue
		}
		_ = c.RegisterFlagCompletionFunc(flag, func(cmd *cobra.Command, args []string, toComplete string) ([]cobra.Completion, cobra.ShellCompDirective) {
			return completeNames(cmd.Context(), env, method, toComplete), cobra.ShellCompDirectiveNoFileComp
		})
	}
	for _, s := range c.Commands() {
		addCompletions(env, s)
	}
}

// completeNames asks the daemon for names starting with prefix. It never
// starts the daemon (a Tab press must not boot anything) and returns
// nothing on any error; it gives up after two seconds.
func completeNames(ctx context.Context, env *Env, method, prefix string) []cobra.Completion {
	if ctx == nil {
		ctx = context.Background()
	}
	ctx, cancel := context.WithTimeout(ctx, 2*time.Second)
	defer cancel()
	c := *env.Client
	c.AutoStart = false
	var items []struct {
		Name string `json:"name"`
	}
	if err := c.Call(ctx, method, nil, &items, nil); err != nil {
		return nil
	}
	var out []cobra.Completion
	for _, it := range items {
		if strings.HasPrefix(it.Name, prefix) && escCell(it.Name) == it.Name {
			out = append(out, it.Name)
		}
	}
	return out
}
