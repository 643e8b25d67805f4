package daemon

import (
	"context"

	"github.com/banger-dev/banger/internal/envd"
	"github.com/banger-dev/banger/internal/httpapi"
)

// startAPI starts the sandbox-timeout reaper and, when [api] listen is
// set, the HTTP API (internal/httpapi) over the same services as the
// unix socket. stop ends both.
func (d *Daemon) startAPI(ctx context.Context) (stop func(), err error) {
	rctx, cancel := context.WithCancel(ctx)
	reaped := make(chan struct{})
	go func() {
		defer close(reaped)
		(&httpapi.Reaper{VMs: d.svc.VMs, Records: d.store, Log: d.log}).Run(rctx)
	}()
	stopReaper := func() { cancel(); <-reaped }
	if !d.cfg.API.Enabled() {
		return stopReaper, nil
	}
	envdSrv := envd.New(envd.Deps{Sandboxes: envdSandboxes{&d.svc, d.store}, Log: d.log})
	srv := httpapi.New(httpapi.Deps{VMs: d.svc.VMs, Images: d.svc.Artifacts, Snapshots: d.svc.VMs, Keys: d.svc.APIKeys,
		Workspaces: d.svc.Workspaces, Execs: d.svc.VMs, Records: d.store, DefaultImage: d.cfg.DefaultImage, Log: d.log, Envd: envdSrv,
		Fork: d.svc.VMs, Network: d.svc.VMs})
	l, err := httpapi.Listen(d.cfg.API, srv, d.log)
	if err != nil {
		stopReaper()
		return nil, err
	}
	served := make(chan struct{})
	go func() {
		defer close(served)
		if err := l.Serve(d.cfg.API.TLSCert, d.cfg.API.TLSKey); err != nil {
			d.log.Error("http api", "err", err)
		}
	}()
	d.log.Info("http api listening", "addr", d.cfg.API.String())
	return func() {
		envdSrv.Close()
		l.Close(stopBound)
		<-served
		stopReaper()
	}, nil
}
