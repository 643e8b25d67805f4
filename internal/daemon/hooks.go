package daemon

import "context"

// Extension points for features that live in their own files (DNS,
// ssh_config, stats polling). Each registers itself from an init function
// so that the core lifecycle code does not grow a branch per feature.
var (
	// services start with the daemon (after reconcile, before serving) and
	// are stopped when it exits. A start error aborts the daemon start,
	// and services already started are stopped.
	services []func(ctx context.Context, d *Daemon) (stop func(), err error)
	// vmChanged runs after a VM is created, started, stopped, deleted or
	// found dead. It must not block for long nor take VM locks.
	vmChanged []func(d *Daemon)
)

func (d *Daemon) startServices(ctx context.Context) (stop func(), err error) {
	netStop, err := d.network.Start(ctx)
	if err != nil {
		return nil, err
	}
	stops := []func(){netStop}
	stopAll := func() {
		for i := len(stops) - 1; i >= 0; i-- {
			stops[i]()
		}
	}
	for _, start := range services {
		s, err := start(ctx, d)
		if err != nil {
			stopAll()
			return nil, err
		}
		stops = append(stops, s)
	}
	return stopAll, nil
}

func (d *Daemon) notifyVMChanged() {
	d.network.Refresh()
	for _, h := range vmChanged {
		h(d)
	}
}
