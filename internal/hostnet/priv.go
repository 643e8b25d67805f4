package hostnet

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/netip"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"
)

// request is one privileged operation: the JSON the helper reads on stdin.
type request struct {
	Op      string  `json:"op"`
	Config  Config  `json:"config"`
	Name    string  `json:"name,omitempty"`
	To      string  `json:"to,omitempty"`
	Up      bool    `json:"up,omitempty"`
	Created Created `json:"created,omitempty"`
	// Guest is guest-apply's; Port, Addrs and TTL are guest-allow's.
	Guest *Guest        `json:"guest,omitempty"`
	Port  uint16        `json:"port,omitempty"`
	Addrs []netip.Addr  `json:"addrs,omitempty"`
	TTL   time.Duration `json:"ttl,omitempty"`
}

// response is what the helper writes on stdout.
type response struct {
	Error   string  `json:"error,omitempty"`
	Missing bool    `json:"missing,omitempty"` // the link did not exist
	InUse   bool    `json:"in_use,omitempty"`  // the TAP is still attached
	Created Created `json:"created"`
	State   State   `json:"state"`
}

// PrivOps is the allow-list: the only operations the helper performs.
var PrivOps = []string{"ensure", "undo", "tap-add", "tap-take", "tap-return", "tap-del", "show", "teardown", "guest-apply", "guest-del", "guest-allow"}

func (o *ops) do(req request) (resp response) {
	var err error
	switch req.Op {
	case "ensure":
		resp.Created, err = o.ensure()
	case "undo":
		err = o.undo(req.Created)
	case "tap-add":
		err = o.tapAdd(req.Name, req.Up)
	case "tap-take":
		err = o.tapTake(req.Name, req.To)
	case "tap-return":
		err = o.tapReturn(req.Name, req.To)
	case "tap-del":
		err = o.tapDel(req.Name)
	case "show":
		resp.State, err = o.show()
	case "teardown":
		err = o.teardown()
	case "guest-apply":
		if req.Guest == nil {
			err = errors.New("guest-apply: no guest")
		} else {
			err = applyGuest(*req.Guest)
		}
	case "guest-del":
		err = removeGuest(req.Name)
	case "guest-allow":
		err = allowResolved(req.Name, req.Port, req.Addrs, req.TTL)
	default:
		err = fmt.Errorf("unknown network operation %q", req.Op)
	}
	if err != nil {
		resp.Error = err.Error()
		resp.Missing = notFound(err)
		resp.InUse = errors.Is(err, errTAPInUse)
	}
	return resp
}

// PrivMain is `bangerd priv OP`, run as root through `sudo -n`:
// it reads one request on stdin, checks it against the allow-list and
// banger's naming rules, performs it in its own network namespace (the
// daemon's) and writes the response on stdout. TAPs are owned by the user
// sudo names in SUDO_UID.
func PrivMain(op string, in io.Reader, out io.Writer) error {
	if os.Geteuid() != 0 {
		return errors.New("bangerd priv must run as root (the daemon runs it through sudo -n)")
	}
	var req request
	if err := json.NewDecoder(io.LimitReader(in, 1<<16)).Decode(&req); err != nil {
		return fmt.Errorf("read request: %w", err)
	}
	// sudoers allows each operation by its argument: the request must not
	// smuggle in another.
	if req.Op != op || !validOp(op) {
		return fmt.Errorf("operation %q not allowed here (argument %q)", req.Op, op)
	}
	req.Config = req.Config.withDefaults()
	if err := req.Config.validate(); err != nil {
		return err
	}
	o := &ops{cfg: req.Config, uid: envID("SUDO_UID"), gid: envID("SUDO_GID")}
	return json.NewEncoder(out).Encode(o.do(req))
}

func validOp(op string) bool {
	for _, p := range PrivOps {
		if p == op {
			return true
		}
	}
	return false
}

func envID(key string) int {
	v, err := strconv.Atoi(os.Getenv(key))
	if err != nil || v < 0 {
		return 0
	}
	return v
}

// HelperPath is the privileged helper: this binary (bangerd) where it
// really lives, symlinks resolved, so that after `make install` sudoers
// names the root-owned copy in $(PREFIX)/bin and the daemon runs exactly
// that file.
func HelperPath() (string, error) {
	self, err := os.Executable()
	if err != nil {
		return "", err
	}
	if p, err := filepath.EvalSymlinks(self); err == nil {
		self = p
	}
	return self, nil
}

// Sudoers is the snippet that lets user run exactly banger's privileged
// network operations without a password (for /etc/sudoers.d/banger).
func Sudoers(user, helper string) string {
	esc := strings.NewReplacer(`\`, `\\`, ",", `\,`, ":", `\:`, "=", `\=`, " ", `\ `).Replace(helper)
	var cmds []string
	for _, op := range PrivOps {
		cmds = append(cmds, esc+" priv "+op)
	}
	return fmt.Sprintf(`# banger: host networking without a password (bridge, TAPs, nftables
# table "banger", IPv4 forwarding, systemd-resolved routing of .vm).
# Install: banger doctor --sudoers | sudo tee /etc/sudoers.d/banger && sudo chmod 0440 /etc/sudoers.d/banger
# %s must be owned by root and writable only by root.
Cmnd_Alias BANGER_NET = %s
%s ALL=(root) NOPASSWD: BANGER_NET
`, helper, strings.Join(cmds, ", \\\n    "), user)
}
