package cli

import (
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"sort"

	"github.com/banger-dev/banger/internal/client"
)

// Contexts name remote hosts (`banger context create box --host
// ssh://me@box`); the current one is where commands go when neither
// --host nor BANGER_HOST says otherwise. They live in one small JSON
// file in the CLI's config directory, replaced atomically.

// defaultContext is this machine's daemon; it always exists.
const defaultContext = "default"

type contextFile struct {
	Current  string                  `json:"current,omitempty"`
	Contexts map[string]contextEntry `json:"contexts,omitempty"`
}

type contextEntry struct {
	Host        string `json:"host"`
	Description string `json:"description,omitempty"`
}

var contextName = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9_.-]{0,62}$`)

func contextsPath(configDir string) string { return filepath.Join(configDir, "contexts.json") }

// loadContexts reads the contexts file; a missing one is empty.
func loadContexts(configDir string) (contextFile, error) {
	var cf contextFile
	b, err := os.ReadFile(contextsPath(configDir))
	if errors.Is(err, os.ErrNotExist) {
		return cf, nil
	}
	if err != nil {
		return cf, err
	}
	if err := json.Unmarshal(b, &cf); err != nil {
		return cf, fmt.Errorf("%s: %w (fix or remove the file)", contextsPath(configDir), err)
	}
	return cf, nil
}

// saveContexts replaces the file atomically (a temporary file renamed
// over it), so a crash leaves the old or the new one.
func saveContexts(configDir string, cf contextFile) error {
	if err := os.MkdirAll(configDir, 0o700); err != nil {
		return err
	}
	b, err := json.MarshalIndent(cf, "", "  ")
	if err != nil {
		return err
	}
	return replaceFileAtomic(contextsPath(configDir), append(b, '\n'), 0o600)
}

// names lists the contexts, default first.
func (cf contextFile) names() []string {
	out := make([]string, 0, len(cf.Contexts)+1)
	for n := range cf.Contexts {
		out = append(out, n)
	}
	sort.Strings(out)
	return append([]string{defaultContext}, out...)
}

// current is the context in use ("default" when none is set).
func (cf contextFile) current() string {
	if cf.Current == "" {
		return defaultContext
	}
	return cf.Current
}

// resolveHost is where commands go: --host, else BANGER_HOST, else the
// current context, else this machine (nil). from names which one chose.
func resolveHost(flag, configDir string) (r *client.Remote, from string, err error) {
	host, from := flag, "--host"
	if host == "" {
		host, from = os.Getenv("BANGER_HOST"), "BANGER_HOST"
	}
	if host == "" {
		cf, err := loadContexts(configDir)
		if err != nil {
			return nil, "", err
		}
		name := cf.current()
		if name == defaultContext {
			return nil, "", nil
		}
		e, ok := cf.Contexts[name]
		if !ok {
			return nil, "", fmt.Errorf("the current context %q does not exist: `banger context use default` or create it", name)
		}
		host, from = e.Host, "context "+name
	}
	r, err = client.ParseHost(host)
	if err != nil {
		return nil, "", fmt.Errorf("%s: %w", from, err)
	}
	return r, from, nil
}
