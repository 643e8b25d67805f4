package api

// SSHParams asks how to reach a VM with OpenSSH (vm.ssh). A daemon that
// predates Wait and Check reads them as a NameParams.
type SSHParams struct {
	Name string `json:"name"`
	// Wait: a VM that is still booting, or whose sshd does not answer
	// yet, is waited for (bounded by boot_timeout), with one progress
	// line saying so.
	Wait bool `json:"wait,omitempty"`
	// Check probes sshd once even when it answered before, without
	// waiting: the CLI's diagnosis after ssh itself failed.
	Check bool `json:"check,omitempty"`
}

// Error codes of vm.ssh when sshd is not ready: what the probe saw.
const (
	CodeSSHRefused     = "ssh_refused"           // nothing listens on port 22
	CodeSSHTimeout     = "ssh_timeout"           // no answer at all
	CodeSSHClosed      = "ssh_closed"            // sshd dropped the connection before the handshake ended
	CodeSSHAuth        = "ssh_auth"              // sshd refused banger's key
	CodeSSHKeyMismatch = "ssh_host_key_mismatch" // the guest presented a key other than its pin
)
