package workspace

import (
	"github.com/banger-dev/banger/internal/agent/proto"
)

// ExportUsageError is the exit code of the export script for problems the
// user can fix (no workspace there, unknown base); its message is on
// stderr.
const ExportUsageError = 3

// exportScript runs in the guest and writes the patch (or the changed
// paths) to stdout. It diffs the base tree against a throwaway index that
// `git add -A` fills from the working tree: the index file is a copy of
// the guest's, inside the git directory (so it is on the same file
// system and shares its stat data), and is deleted on exit; the guest's
// own index, refs and working tree are never written. New objects land
// in the object store, where they are harmless.
//
// Output options are given on the command line so that nothing in the
// guest's git config (diff.noprefix, diff.external, color.ui,
// diff.submodule...) can change the patch's format.
const exportScript = `set -eu
fail() { echo "$*" >&2; exit 3; }
command -v git >/dev/null 2>&1 || fail "git is not installed in the guest"
[ -d "$BANGER_WS" ] || fail "no workspace at $BANGER_WS in this VM (banger vm workspace prepare imports one)"
cd "$BANGER_WS"
gd=$(git rev-parse --absolute-git-dir 2>/dev/null) || fail "$BANGER_WS in the guest is not a git repository"
[ "$(git rev-parse --show-toplevel)" = "$(pwd -P)" ] || fail "$BANGER_WS in the guest is not the top of a git repository"
if [ -n "$BANGER_BASE" ]; then
	base=$(git rev-parse --verify --quiet --end-of-options "$BANGER_BASE^{tree}") ||
		fail "--base $BANGER_BASE: no such commit in the guest repository"
else
	base=$(cat "$gd/` + BaseTreeFile + `" 2>/dev/null) ||
		fail "$BANGER_WS was not imported by banger: give the commit to diff against with --base REF"
	git cat-file -e "$base^{tree}" 2>/dev/null || fail "the import's base tree $base is missing: give --base REF"
fi
idx=$(mktemp "$gd/banger-export-index.XXXXXX")
trap 'rm -f "$idx" "$idx.lock"' EXIT
trap 'exit 130' HUP INT TERM
if [ -f "$gd/index" ]; then cp "$gd/index" "$idx"; else rm -f "$idx"; fi
export GIT_INDEX_FILE="$idx"
g() { git -c core.quotePath=true -c core.splitIndex=false -c core.fsmonitor=false -c core.untrackedCache=false "$@"; }
g add -A -- . >/dev/null
if [ "$BANGER_NAME_ONLY" = 1 ]; then
	g diff --cached --name-only --no-renames --ignore-submodules=none --no-relative "$base" --
else
	g diff --cached --binary --full-index --no-color --no-ext-diff --no-textconv --no-renames \
		--submodule=short --ignore-submodules=none --no-relative --src-prefix=a/ --dst-prefix=b/ "$base" --
fi
`

// ExportRequest is the guest command that writes the export of the
// workspace at guestPath to stdout: a patch against base (a guest commit;
// "" = the tree the import copied in), or with nameOnly the changed paths
// (quoted by git when unusual).
func ExportRequest(guestPath, base string, nameOnly bool) proto.ExecRequest {
	flag := "0"
	if nameOnly {
		flag = "1"
	}
	return proto.ExecRequest{
		Argv: []string{"sh", "-c", exportScript},
		Env:  []string{"BANGER_WS=" + guestPath, "BANGER_BASE=" + base, "BANGER_NAME_ONLY=" + flag},
		Dir:  "/",
	}
}
