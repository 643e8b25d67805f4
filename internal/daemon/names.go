package daemon

import (
	"context"
	"errors"
	"strings"

	"github.com/banger-dev/banger/internal/store"
)

// exactVM resolves the name a destructive command was given: the exact
// name or id only, never a prefix, so `vm delete de` cannot delete dev.
// A miss suggests the names it might have meant.
func (d *Daemon) exactVM(ctx context.Context, name string) (store.VM, error) {
	if name == "" {
		return store.VM{}, invalid("a VM name is required")
	}
	vm, err := d.store.GetVM(ctx, name)
	if !errors.Is(err, store.ErrNotFound) {
		return vm, err
	}
	vms, err := d.store.ListVMs(ctx)
	if err != nil {
		return vm, err
	}
	names := make([]string, len(vms))
	for i, v := range vms {
		names[i] = v.Name
	}
	return vm, notFound("no VM named %q%s", name, didYouMean(name, names, "`banger vm ls` lists VMs"))
}

// didYouMean is "; did you mean dev?" for the names typed is a prefix of,
// else those within an edit distance of 2 (the closest), else
// ": <fallback>".
func didYouMean(typed string, names []string, fallback string) string {
	var prefixed, near []string
	best := 3
	for _, n := range names {
		if strings.HasPrefix(n, typed) {
			prefixed = append(prefixed, n)
		}
		switch d := editDistance(typed, n); {
		case d < best:
			best, near = d, []string{n}
		case d == best:
			near = append(near, n)
		}
	}
	if len(prefixed) == 0 {
		prefixed = near
	}
	if len(prefixed) == 0 {
		return ": " + fallback
	}
	if len(prefixed) > 5 {
		prefixed = append(prefixed[:5], "…")
	}
	return "; did you mean " + strings.Join(prefixed, " or ") + "?"
}

// editDistance is the Levenshtein distance between a and b.
func editDistance(a, b string) int {
	prev := make([]int, len(b)+1)
	for j := range prev {
		prev[j] = j
	}
	for i := 1; i <= len(a); i++ {
		cur := make([]int, len(b)+1)
		cur[0] = i
		for j := 1; j <= len(b); j++ {
			cost := 1
			if a[i-1] == b[j-1] {
				cost = 0
			}
			cur[j] = min(prev[j]+1, cur[j-1]+1, prev[j-1]+cost)
		}
		prev = cur
	}
	return prev[len(b)]
}
