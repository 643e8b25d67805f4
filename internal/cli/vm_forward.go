package cli

import (
	"context"
	"fmt"
	"strconv"
	"strings"

	"github.com/banger-dev/banger/internal/api"
	"github.com/spf13/cobra"
)

// vmForwardOptions are `vm forward`'s flags and arguments, and what it
// needs.
type vmForwardOptions struct {
	IO     *iostreams
	Client interface {
		VMForward(context.Context, api.ForwardParams, func(api.Progress)) ([]api.Forward, error)
		VMAutoForward(context.Context, api.AutoForwardParams) ([]api.Forward, error)
	}
	Params api.ForwardParams
	// Auto is --auto: nil when not given.
	Auto *bool
	JSON bool
}

func newVMForwardCmd(f *factory, runF func(*vmForwardOptions) error) *cobra.Command {
	opts := &vmForwardOptions{IO: f.IO, Client: f.Client}
	var auto bool
	cmd := &cobra.Command{
		Use:   "forward NAME [ADDR:]HOSTPORT:GUESTPORT[/udp]... | forward NAME --auto[=false]",
		Short: "Forward host ports to a VM's ports (TCP or UDP), or follow its listeners",
		Long: `Forward a port on the host to a port of the VM: bangerd listens on
127.0.0.1:HOSTPORT (or ADDR:HOSTPORT) and relays each TCP connection, or UDP
datagram, to the guest. Forwards are kept with the VM: they listen while it
runs and come back when it starts. A host port already in use is refused,
naming the process that holds it. Ports below 1024 need privilege bangerd
does not have.

--auto forwards every TCP port the guest starts listening on (not its
loopback, not sshd's 22) to the same port on 127.0.0.1, or the next free
one, and removes the forward when the guest stops listening; ` + "`vm forward ls`" + `
shows where each went. [network] auto_forward = true turns it on for every
VM.`,
		Example: "  banger vm forward dev 8080:80                # http://127.0.0.1:8080 reaches the guest's port 80\n" +
			"  banger vm forward dev 0.0.0.0:5353:53/udp    # the guest's DNS on every host address\n" +
			"  banger vm forward dev --auto                 # follow the guest's listeners\n" +
			"  banger vm forward ls dev && banger vm forward rm dev 8080",
		Args: func(cmd *cobra.Command, args []string) error {
			if len(args) < 1 {
				return usageError{fmt.Errorf("vm forward: expected a VM name and forwards (see `%s --help`)", cmd.CommandPath())}
			}
			if len(args) == 1 && !cmd.Flags().Changed("auto") {
				return usageError{fmt.Errorf("vm forward %s: give a forward such as 8080:80, or --auto (list them with `banger vm forward ls %s`)", args[0], args[0])}
			}
			for _, a := range args[1:] {
				if _, err := api.ParseForward(a); err != nil {
					return usageError{err}
				}
			}
			return nil
		},
		RunE: func(cmd *cobra.Command, args []string) error {
			opts.Params = api.ForwardParams{Name: args[0], Forwards: args[1:]}
			if cmd.Flags().Changed("auto") {
				opts.Auto = &auto
			}
			if runF != nil {
				return runF(opts)
			}
			return vmForwardRun(cmd.Context(), opts)
		},
	}
	cmd.Flags().BoolVar(&auto, "auto", false, "forward every TCP port the guest listens on (--auto=false stops)")
	cmd.Flags().BoolVar(&opts.JSON, "json", false, "print the VM's forwards as JSON")
	cmd.AddCommand(newVMForwardListCmd(f, nil), newVMForwardRmCmd(f, nil))
	return cmd
}

func vmForwardRun(ctx context.Context, opts *vmForwardOptions) error {
	var list []api.Forward
	var err error
	if len(opts.Params.Forwards) > 0 {
		show, done := progressPrinter(opts.IO)
		list, err = opts.Client.VMForward(ctx, opts.Params, show)
		done()
		if err != nil {
			return err
		}
	}
	if opts.Auto != nil {
		if list, err = opts.Client.VMAutoForward(ctx, api.AutoForwardParams{Name: opts.Params.Name, On: *opts.Auto}); err != nil {
			return err
		}
	}
	return printForwards(opts.IO, list, opts.JSON)
}

func printForwards(io *iostreams, list []api.Forward, asJSON bool) error {
	if asJSON {
		return printJSON(io.Out, list)
	}
	t := newTable(io.Out)
	t.row("HOST", "GUEST PORT", "PROTO", "KIND", "STATE")
	for _, f := range list {
		kind, state := "forward", "listening"
		if f.Auto {
			kind = "auto"
		}
		if !f.Active {
			state = "idle (VM not running, or port taken)"
		}
		t.row(f.Addr+":"+strconv.Itoa(f.HostPort), strconv.Itoa(f.GuestPort), f.Proto, kind, state)
	}
	return t.flush()
}

// vmForwardListOptions are `vm forward ls`'s.
type vmForwardListOptions struct {
	IO     *iostreams
	Client interface {
		VMForwardList(context.Context, string) ([]api.Forward, error)
	}
	Name string
	JSON bool
}

func newVMForwardListCmd(f *factory, runF func(*vmForwardListOptions) error) *cobra.Command {
	opts := &vmForwardListOptions{IO: f.IO, Client: f.Client}
	cmd := &cobra.Command{
		Use:     "ls NAME [--json]",
		Aliases: []string{"list"},
		Short:   "List a VM's forwards, auto-forwards included",
		Args:    exactArgs(1, "one VM name"),
		RunE: func(cmd *cobra.Command, args []string) error {
			opts.Name = args[0]
			if runF != nil {
				return runF(opts)
			}
			list, err := opts.Client.VMForwardList(cmd.Context(), opts.Name)
			if err != nil {
				return err
			}
			return printForwards(opts.IO, list, opts.JSON)
		},
	}
	cmd.Flags().BoolVar(&opts.JSON, "json", false, "print JSON")
	return cmd
}

// vmForwardRmOptions are `vm forward rm`'s.
type vmForwardRmOptions struct {
	IO     *iostreams
	Client interface {
		VMForwardRemove(context.Context, api.ForwardRemoveParams) ([]api.Forward, error)
	}
	Params api.ForwardRemoveParams
}

func newVMForwardRmCmd(f *factory, runF func(*vmForwardRmOptions) error) *cobra.Command {
	opts := &vmForwardRmOptions{IO: f.IO, Client: f.Client}
	cmd := &cobra.Command{
		Use:     "rm NAME HOSTPORT[/udp]",
		Aliases: []string{"remove"},
		Short:   "Remove a VM's forward of a host port",
		Example: "  banger vm forward rm dev 8080",
		Args: func(cmd *cobra.Command, args []string) error {
			if len(args) != 2 {
				return usageError{fmt.Errorf("vm forward rm: expected a VM name and a host port (see `%s --help`)", cmd.CommandPath())}
			}
			port, proto, _ := strings.Cut(args[1], "/")
			n, err := strconv.Atoi(port)
			if err != nil || n < 1 || n > 65535 || proto != "" && proto != "tcp" && proto != "udp" {
				return usageError{fmt.Errorf("vm forward rm: %q is not HOSTPORT[/tcp|/udp]", args[1])}
			}
			opts.Params = api.ForwardRemoveParams{Name: args[0], HostPort: n, Proto: proto}
			return nil
		},
		RunE: func(cmd *cobra.Command, args []string) error {
			if runF != nil {
				return runF(opts)
			}
			list, err := opts.Client.VMForwardRemove(cmd.Context(), opts.Params)
			if err != nil {
				return err
			}
			return printForwards(opts.IO, list, false)
		},
	}
	return cmd
}
