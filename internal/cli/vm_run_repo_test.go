package cli

import (
	"errors"
	"slices"
	"testing"
)

func TestSplitRunRepoAcceptsFlagsAfterTheRepository(t *testing.T) {
	dir := t.TempDir()
	for _, c := range []struct {
		argv     []string
		repo     string
		rest     []string
		rm       bool
		usageErr bool
	}{
		{[]string{"--rm", dir, "--", "make", "test"}, dir, []string{"make", "test"}, true, false},
		{[]string{dir, "--rm", "--vcpu", "2", "--", "make", "-j2"}, dir, []string{"make", "-j2"}, true, false},
		{[]string{dir, "--", "git", "log", "--", "f"}, dir, []string{"git", "log", "--", "f"}, false, false},
		{[]string{"--", "ls", dir}, "", []string{"ls", dir}, false, false},           // no repository: a plain command
		{[]string{"echo", "--", "x"}, "", []string{"echo", "--", "x"}, false, false}, // first word is no directory
		{[]string{dir, "stray", "--", "x"}, "", nil, false, true},
		{[]string{dir, "--no-such-flag", "--", "x"}, "", nil, false, true},
		{[]string{dir + "-typo", "--", "make", "test"}, "", nil, false, true}, // a path that names nothing
		{[]string{"./no-such-repo", "--", "x"}, "", nil, false, true},
		{[]string{"~/no-such-repo", "--", "x"}, "", nil, false, true},
		{[]string{".no-such", "--", "x"}, "", nil, false, true},
		{[]string{"./no-such-tool"}, "", nil, false, true},
		{[]string{"/bin/sh", "-c", "true"}, "", []string{"/bin/sh", "-c", "true"}, false, false}, // exists: a command
		{[]string{"--", "./guest-only-tool", "x"}, "", []string{"./guest-only-tool", "x"}, false, false},
		{[]string{"make", "--", "x"}, "", []string{"make", "--", "x"}, false, false}, // no path: a command
	} {
		cmd := newVMRunCmd(newFactory(&Env{}), nil)
		if err := cmd.Flags().Parse(c.argv); err != nil {
			t.Fatalf("%v: %v", c.argv, err)
		}
		repo, rest, err := splitRunRepo(cmd, cmd.Flags().Args())
		var ue usageError
		if c.usageErr {
			if !errors.As(err, &ue) {
				t.Errorf("%v: err %v, want a usage error", c.argv, err)
			}
			continue
		}
		rm, _ := cmd.Flags().GetBool("rm")
		if err != nil || repo != c.repo || !slices.Equal(rest, c.rest) || rm != c.rm {
			t.Errorf("%v: repo %q rest %q rm %v err %v; want %q %q %v", c.argv, repo, rest, rm, err, c.repo, c.rest, c.rm)
		}
	}
}
