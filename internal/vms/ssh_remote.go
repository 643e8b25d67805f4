package vms

import (
	"context"
	"os"

	"github.com/banger-dev/banger/internal/api"
	"github.com/banger-dev/banger/internal/progress"
)

// SSHRemote is SSH for a client on another machine (`banger --host
// ssh://… vm ssh`): it also returns the guest's pinned known_hosts line
// and banger's guest key, since that client's OpenSSH reaches the guest
// through a jump and checks and authenticates locally.
func (s *Service) SSHRemote(ctx context.Context, p api.SSHParams, r progress.Reporter) (api.SSHRemoteInfo, error) {
	info, err := s.SSH(ctx, p, r)
	if err != nil {
		return api.SSHRemoteInfo{}, err
	}
	pin, err := s.Keys.Pinned(info.VM.Name)
	if err != nil {
		return api.SSHRemoteInfo{}, err
	}
	key, err := os.ReadFile(s.Keys.IdentityFile())
	if err != nil {
		return api.SSHRemoteInfo{}, err
	}
	return api.SSHRemoteInfo{SSHInfo: info, KnownHosts: info.HostKeyAlias + " " + string(pin), IdentityKey: string(key)}, nil
}
