package e2e

import (
	"encoding/json"
	"path/filepath"
	"strings"
	"testing"

	"github.com/banger-dev/banger/internal/image"
)

// findOverlay is a guest shell snippet that sets $dev to the guest's
// overlay disk: the /dev/vd* whose ext4 UUID (superblock bytes
// 1024+0x68..) is the one the host gave that disk. The disk is a block
// device the guest can write like any other; no root escalation needed
// beyond what a guest already has.
const findOverlay = `dev=
for d in /dev/vd?; do
  u=$(dd if=$d bs=1 skip=1128 count=16 2>/dev/null | od -An -tx1 | tr -d ' \n')
  [ "$u" = "$UUID" ] && dev=$d
done
[ -n "$dev" ] || { echo "no disk with uuid $UUID" >&2; exit 1; }
echo "overlay=$dev"
`

// setDirSize writes i_size (1 GiB) into the inode of the directory at
// $ino on $dev, locating it from the superblock and group descriptors
// the way the kernel does. The write goes through the block device's
// page cache, which ext4's own buffers share, so the kernel's later
// writeback of that inode-table block carries it to the disk.
const setDirSize = `perl -e '
my ($dev,$ino)=@ARGV; open(my $f,"+<",$dev) or die "open $dev: $!"; binmode $f;
sub rd { my ($o,$n)=@_; seek($f,$o,0); read($f,my $b,$n)==$n or die "read $o: $!"; $b }
my $sb=rd(1024,1024);
my $bs=1024<<unpack("V",substr($sb,0x18,4)); my $ipg=unpack("V",substr($sb,0x28,4));
my $isz=unpack("v",substr($sb,0x58,2)); my $first=unpack("V",substr($sb,0x14,4));
my $ds=(unpack("V",substr($sb,0x60,4))&0x80)?unpack("v",substr($sb,0xFE,2)):32;
my $g=int(($ino-1)/$ipg); my $d=rd(($first+1)*$bs+$g*$ds,$ds);
my $t=unpack("V",substr($d,8,4)); $t+=unpack("V",substr($d,0x28,4))*4294967296 if $ds>=64;
my $o=$t*$bs+(($ino-1)%$ipg)*$isz; seek($f,$o+4,0); print $f pack("V",1<<30); close($f) or die "close: $!";
print "inode $ino at byte $o: i_size=1GiB\n";' "$dev" "$ino"
`

// TestPromoteHostileGuest (issue 11): guests corrupt their own overlay
// disks — one its superblock's s_inode_size (129 panicked the ext4
// reader, killing bangerd), one a directory's i_size (1 GiB was read
// whole: gigabytes from a few bytes) — and are stopped and promoted.
// Each promote fails with a clear error; the daemon keeps its PID and a
// bystander VM keeps running and answering.
func TestPromoteHostileGuest(t *testing.T) {
	e := newEnv(t)
	e.must("vm", "create", "--name", "bystander")
	pid := e.statusPID()
	if f := e.daemonPID(); f != pid {
		t.Fatalf("daemon status says pid %d, the pid file %d", pid, f)
	}
	cases := []struct {
		vm, script, want string
	}{
		{"hostsb", findOverlay + `printf '\201\000' | dd of=$dev bs=1 seek=$((1024+88)) conv=notrunc 2>/dev/null
sync
dd if=$dev bs=1 skip=$((1024+88)) count=2 2>/dev/null | od -An -tu2`, "inode size 129"},
		{"hostdir", findOverlay + `mkdir -p /var/tmp/hostile/sub && echo x > /var/tmp/hostile/f && sync
mkdir -p /mnt/ov && mount $dev /mnt/ov
ino=$(stat -c %i /mnt/ov/upper/var/tmp/hostile)
umount /mnt/ov
` + setDirSize + `sync`, "var/tmp/hostile"},
	}
	for _, c := range cases {
		e.must("vm", "create", "--name", c.vm)
		uuid := e.overlayUUID(c.vm)
		r := e.must("vm", "exec", c.vm, "--", "env", "UUID="+uuid, "sh", "-ec", c.script)
		t.Logf("%s: guest says:\n%s%s", c.vm, r.out, r.err)
		e.must("vm", "stop", c.vm)
		p := e.banger("image", "promote", c.vm, "--name", c.vm+"-img")
		if p.code == 0 || !strings.Contains(p.err, "promote "+c.vm) || !strings.Contains(p.err, c.want) {
			t.Errorf("promote %s: exit %d, stderr %q; want a failure naming %q", c.vm, p.code, p.err, c.want)
		}
		t.Logf("promote %s: %s", c.vm, strings.TrimSpace(p.err))
		if got := e.statusPID(); got != pid {
			t.Fatalf("bangerd pid %d after promoting %s, was %d: the daemon died", got, c.vm, pid)
		}
		if r := e.banger("image", "show", c.vm+"-img"); r.code == 0 {
			t.Errorf("a failed promote left image %s-img", c.vm)
		}
	}
	if r := e.must("vm", "exec", "bystander", "--", "echo", "still here"); r.out != "still here\n" {
		t.Errorf("bystander exec: %q", r.out)
	}
	for _, v := range e.vmList() {
		if v["name"] == "bystander" && v["state"] != "running" {
			t.Errorf("bystander is %v", v["state"])
		}
	}
	for _, n := range []string{"bystander", "hostsb", "hostdir"} {
		e.must("vm", "delete", n)
	}
	e.assertClean()
}

// statusPID is the PID `banger daemon status` reports: the daemon
// answers, and is the process the pid file names.
func (e *env) statusPID() int {
	e.t.Helper()
	var st struct {
		PID int `json:"pid"`
	}
	r := e.must("daemon", "status", "--json")
	if err := json.Unmarshal([]byte(r.out), &st); err != nil || st.PID == 0 {
		e.t.Fatalf("daemon status --json: %v\n%s", err, r.out)
	}
	return st.PID
}

// overlayUUID is the UUID (as 32 hex digits, the superblock's byte
// order) of the overlay disk of VM name.
func (e *env) overlayUUID(name string) string {
	e.t.Helper()
	var id string
	for _, v := range e.vmList() {
		if v["name"] == name {
			id, _ = v["id"].(string)
		}
	}
	if id == "" {
		e.t.Fatalf("no VM named %s", name)
	}
	u, err := image.ReadExt4UUID(filepath.Join(e.stateDir(), "vms", id, "overlay.ext4"))
	if err != nil || u == "" {
		e.t.Fatalf("overlay uuid of %s: %q %v", id, u, err)
	}
	return strings.ReplaceAll(u, "-", "")
}
