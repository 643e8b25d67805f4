package buildinfo

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"strings"
	"sync"
	"time"
)

var agentCache struct {
	sync.Mutex
	m map[string]agentEntry
}

type agentEntry struct {
	mod     time.Time
	size    int64
	version string
}

// AgentVersion is the version of the banger-agent binary at path: what
// `banger-agent version` prints (the -X version `make build` stamps in,
// which -trimpath keeps out of the recorded build settings), else, for a
// build without one, the Go toolchain's record read from the file. The
// answer is cached per path, size and modification time.
func AgentVersion(ctx context.Context, path string) (string, error) {
	fi, err := os.Stat(path)
	if err != nil {
		return "", err
	}
	agentCache.Lock()
	e, ok := agentCache.m[path]
	agentCache.Unlock()
	if ok && e.mod.Equal(fi.ModTime()) && e.size == fi.Size() {
		return e.version, nil
	}
	v := askAgent(ctx, path)
	if unset(v) {
		info, err := OfFile(path)
		if err != nil && v == "" {
			return "", fmt.Errorf("%s: not a banger-agent binary: %w", path, err)
		}
		if err == nil {
			v = info.String()
		}
	}
	agentCache.Lock()
	if agentCache.m == nil {
		agentCache.m = map[string]agentEntry{}
	}
	agentCache.m[path] = agentEntry{fi.ModTime(), fi.Size(), v}
	agentCache.Unlock()
	return v, nil
}

// askAgent runs `banger-agent version` (outside a guest it only prints
// "banger-agent VERSION"), bounded to two seconds; "" when that fails.
func askAgent(ctx context.Context, path string) string {
	ctx, cancel := context.WithTimeout(ctx, 2*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, path, "version")
	cmd.Env = []string{"PATH=/usr/bin:/bin"}
	out, err := cmd.Output()
	if err != nil || len(out) > 512 {
		return ""
	}
	v, ok := strings.CutPrefix(strings.TrimSpace(string(out)), "banger-agent ")
	if !ok || strings.ContainsAny(v, " \n") {
		return ""
	}
	return v
}
