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
