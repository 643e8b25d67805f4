package api

// MethodVMSSHRemote is vm.ssh for a client on another machine: besides
// where the guest is, the pinned host key and banger's guest key, which
// that client's OpenSSH needs in files of its own.
const MethodVMSSHRemote = "vm.ssh_remote"

// SSHRemoteInfo is SSHInfo plus the contents a remote client writes
// locally. IdentityFile and KnownHostsFile still name the daemon's files.
type SSHRemoteInfo struct {
	SSHInfo
	// KnownHosts is the guest's known_hosts line, under HostKeyAlias.
	KnownHosts string `json:"known_hosts"`
	// IdentityKey is banger's private key for guests (OpenSSH PEM); the
	// caller is the daemon's own user, who can read the file anyway.
	IdentityKey string `json:"identity_key"`
}
