package cli

import (
	"io"

	"github.com/banger-dev/banger/internal/client"
	"github.com/banger-dev/banger/internal/config"
)

// factory gives commands what they need from the outside world, as
// cli/cli's cmdutil.Factory does: the streams, the daemon client, the
// paths and the configuration. Each command's constructor copies what it
// uses into its options struct, so its run function reads no globals and
// a test can hand it fakes.
type factory struct {
	IO     *iostreams
	Client *client.Client
	Paths  config.Paths
}

// newFactory is the factory of the world env describes.
func newFactory(env *Env) *factory {
	return &factory{IO: &iostreams{In: env.In, Out: env.Out, Err: env.Err}, Client: env.Client, Paths: env.Paths}
}

// Config reads config.toml (defaults for what it does not set).
func (f *factory) Config() (config.Config, error) { return config.Load(f.Paths.ConfigFile()) }

// iostreams are a command's standard streams and what they are connected
// to (cli/cli's iostreams.IOStreams).
type iostreams struct {
	In       io.Reader
	Out, Err io.Writer
}

// isStderrTTY says whether progress can rewrite a status line on Err.
func (s *iostreams) isStderrTTY() bool { return isTerminalWriter(s.Err) }

// isStdoutTTY says whether Out is a terminal (output is filtered or sized
// for it).
func (s *iostreams) isStdoutTTY() bool { return isTerminalWriter(s.Out) }

// isStdinTTY says whether In is a character device (a terminal).
func (s *iostreams) isStdinTTY() bool { return isTerminal(s.In) }

// (isTerminalWriter and isTerminal live beside their first users.)
