package vms

import (
	"context"
	"fmt"
	"sync"
	"sync/atomic"

	"github.com/banger-dev/banger/internal/agent/client"
	"github.com/banger-dev/banger/internal/vmm"
)

// instance is a running VM's transient state: its VMM machine and agent
// connection (later its forwards and policy). The service's map holds
// one per running VM; its watcher ends with the VMM.
type instance struct {
	m       vmm.Machine
	agentMu sync.Mutex
	agent   *client.Client
	sshOK   atomic.Bool // sshd answered with the pinned key (ssh.go)
	// paused: the vCPUs are stopped; the agent client sends no
	// keep-alive pings meanwhile (client/keepalive.go).
	paused atomic.Bool
}

// setPaused records whether the VM's vCPUs are stopped and tells its
// agent client, so that a long pause does not end the session and the
// exec streams on it.
func (in *instance) setPaused(p bool) {
	in.agentMu.Lock()
	defer in.agentMu.Unlock()
	in.paused.Store(p)
	if in.agent != nil {
		in.agent.SetPaused(p)
	}
}

// pausing is a machine's Snapshotter that keeps the instance's paused
// flag: set before the vCPUs stop, cleared once they run again.
type pausing struct {
	vmm.Snapshotter
	in *instance
}

func (p pausing) Pause(ctx context.Context) error {
	was := p.in.paused.Load()
	p.in.setPaused(true)
	if err := p.Snapshotter.Pause(ctx); err != nil {
		p.in.setPaused(was)
		return err
	}
	return nil
}

func (p pausing) Resume(ctx context.Context) error {
	if err := p.Snapshotter.Resume(ctx); err != nil {
		return err
	}
	p.in.setPaused(false)
	return nil
}

// agentClient returns a connected agent client, reconnecting when the
// previous session has ended (for example after a daemon restart).
func (in *instance) agentClient(ctx context.Context) (*client.Client, error) {
	in.agentMu.Lock()
	defer in.agentMu.Unlock()
	if in.agent != nil {
		select {
		case <-in.agent.Done():
			in.agent = nil
		default:
			return in.agent, nil
		}
	}
	conn, err := in.m.DialAgent(ctx)
	if err != nil {
		return nil, fmt.Errorf("reach guest agent: %w", err)
	}
	c, err := client.Connect(ctx, conn)
	if err != nil {
		conn.Close()
		return nil, fmt.Errorf("guest agent handshake: %w", err)
	}
	c.SetPaused(in.paused.Load())
	in.agent = c
	return c, nil
}

func (in *instance) closeAgent() {
	in.agentMu.Lock()
	defer in.agentMu.Unlock()
	if in.agent != nil {
		in.agent.Close()
		in.agent = nil
	}
}

// AgentClient is the connected agent client of a running VM (workspace
// imports stream through it).
func (s *Service) AgentClient(ctx context.Context, id string) (*client.Client, error) {
	in := s.instance(id)
	if in == nil {
		return nil, errNotRunning
	}
	return in.agentClient(ctx)
}
