// Package suggest finds the names a user probably meant when a name they
// typed matches nothing: "did you mean dev?" for commands (CLI) and for
// VMs, images and kernels (daemon). It has no dependencies, so the CLI and
// the daemon share it without linking each other.
package suggest

import "strings"

// maxDistance is the largest edit distance still offered as a suggestion.
const maxDistance = 2

// Closest returns the candidates typed is a prefix of, else those at the
// smallest edit distance from it (at most 2), in the order given, each
// once. canonical maps a candidate to the name to offer (an alias to its
// command); nil offers the candidate itself.
func Closest(typed string, candidates []string, canonical func(string) string) []string {
	if canonical == nil {
		canonical = func(s string) string { return s }
	}
	var prefixed, near []string
	best := maxDistance + 1
	for _, c := range candidates {
		name := canonical(c)
		if strings.HasPrefix(c, typed) {
			prefixed = appendOnce(prefixed, name)
		}
		switch d := Distance(typed, c); {
		case d < best:
			best, near = d, []string{name}
		case d == best:
			near = appendOnce(near, name)
		}
	}
	if len(prefixed) > 0 {
		return prefixed
	}
	return near
}

func appendOnce(list []string, s string) []string {
	for _, x := range list {
		if x == s {
			return list
		}
	}
	return append(list, s)
}

// Distance is the Levenshtein distance between a and b.
func Distance(a, b string) int {
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

// Hint is "; did you mean dev?" for the names typed is a prefix of, else
// the closest within an edit distance of 2, else ": <fallback>" — the
// tail of a "no VM named …" message.
func Hint(typed string, names []string, fallback string) string {
	near := Closest(typed, names, nil)
	if len(near) == 0 {
		return ": " + fallback
	}
	if len(near) > 5 {
		near = append(near[:5], "…")
	}
	return "; did you mean " + strings.Join(near, " or ") + "?"
}
