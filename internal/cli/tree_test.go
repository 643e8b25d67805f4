package cli

import (
	"bytes"
	"context"
	"errors"
	"net"
	"strings"
	"testing"

	"github.com/banger-dev/banger/internal/client"
	"github.com/spf13/cobra"
)

// Every command, whichever file registers it, refuses an unknown flag
// with exit 2 before calling the daemon, and every group refuses an
// unknown subcommand the same way.
func TestEveryCommandUsageErrorExits2(t *testing.T) {
	var paths [][]string
	var walk func(c *cobra.Command, path []string)
	walk = func(c *cobra.Command, path []string) {
		paths = append(paths, path)
		for _, s := range c.Commands() {
			if s.Name() != "help" {
				walk(s, append(append([]string(nil), path...), s.Name()))
			}
		}
	}
	walk(newRootCmd(newFactory(&Env{})), nil)
	if len(paths) < 40 {
		t.Fatalf("only %d commands found", len(paths))
	}
	for _, p := range paths {
		extras := [][]string{{"--no-such-flag"}}
		if c, _, _ := newRootCmd(newFactory(&Env{})).Find(p); c.HasSubCommands() {
			extras = append(extras, []string{"no-such-command"}, []string{"no-such-command", "--no-such-flag"})
		}
		for _, extra := range extras {
			args := append(append([]string(nil), p...), extra...)
			var out, errb bytes.Buffer
			env := &Env{In: strings.NewReader(""), Out: &out, Err: &errb, Client: &client.Client{
				DialForTest: func(context.Context) (net.Conn, error) { return nil, errors.New("must not dial") }}}
			if code := Run(context.Background(), env, args); code != ExitUsage {
				t.Errorf("banger %s: exit %d, want %d (stderr %q)", strings.Join(args, " "), code, ExitUsage, errb.String())
			}
		}
	}
}

func TestEscCell(t *testing.T) {
	for in, want := range map[string]string{
		"dev":             "dev",
		"naïve ünïcode ✓": "naïve ünïcode ✓",
		"a\x1b[31mb":      `a\x1b[31mb`,
		"a\r\nb\tc":       `a\r\nb\tc`,
		"bad\xffutf8":     `bad\xffutf8`,
		"c1\u009bx":       `c1\u009bx`,
		"rlo\u202etxt":    `rlo\u202etxt`,
		"del\x7f":         `del\x7f`,
	} {
		if got := escCell(in); got != want {
			t.Errorf("escCell(%q) = %q, want %q", in, got, want)
		}
	}
	if got := escText("line1\nline2\t\x1b"); got != "line1\nline2\t\\x1b" {
		t.Errorf("escText keeps newlines and tabs only: %q", got)
	}
}

// Every command and flag the completion tables name exists: a renamed
// command would otherwise silently lose its name completion.
func TestCompletionTablesNameRealCommands(t *testing.T) {
	root := newRootCmd(newFactory(&Env{}))
	find := func(path string) *cobra.Command {
		c, rest, err := root.Find(strings.Fields(path)[1:])
		if err != nil || len(rest) > 0 || c.CommandPath() != path {
			t.Errorf("completion names %q, which is no command", path)
			return nil
		}
		return c
	}
	for path := range nameArgCompletion {
		if c := find(path); c != nil && c.ValidArgsFunction == nil {
			t.Errorf("%s: no name completion attached", path)
		}
	}
	for path := range snapshotArgCompletion {
		if c := find(path); c != nil && c.ValidArgsFunction == nil {
			t.Errorf("%s: no snapshot name completion attached", path)
		}
	}
	for path, flags := range flagCompletion {
		c := find(path)
		for flag := range flags {
			if c != nil && c.Flags().Lookup(flag) == nil {
				t.Errorf("completion names %s --%s, which is no flag", path, flag)
			}
		}
	}
}
