package agent

import (
	"os"
	"os/exec"
	"path/filepath"
	"testing"
)

// The agent decides whether to grow from the superblock and the disk's
// size; the resize itself (an ioctl on a mounted filesystem) is covered by
// the end-to-end test of `vm set --disk-size`.
func TestExt4GrowTarget(t *testing.T) {
	if _, err := exec.LookPath("mkfs.ext4"); err != nil {
		t.Fatal("mkfs.ext4 not installed: `make setup-test` installs e2fsprogs")
	}
	disk := filepath.Join(t.TempDir(), "d.ext4")
	if out, err := exec.Command("mkfs.ext4", "-q", "-b", "4096", disk, "16M").CombinedOutput(); err != nil {
		t.Fatalf("mkfs: %v %s", err, out)
	}
	blocks, fits, err := ext4GrowTarget(disk)
	if err != nil || blocks != 4096 || fits != 4096 {
		t.Fatalf("fresh disk: blocks %d fits %d err %v", blocks, fits, err)
	}
	if err := os.Truncate(disk, 64<<20+100); err != nil { // what vm set does
		t.Fatal(err)
	}
	blocks, fits, err = ext4GrowTarget(disk)
	if err != nil || blocks != 4096 || fits != 16384 {
		t.Fatalf("grown disk: blocks %d fits %d err %v", blocks, fits, err)
	}
	// A disk that is not ext4 is an error, not a resize.
	junk := filepath.Join(t.TempDir(), "junk")
	os.WriteFile(junk, make([]byte, 8192), 0o600)
	if _, _, err := ext4GrowTarget(junk); err == nil {
		t.Fatal("junk disk accepted")
	}
	if from, to, err := growExt4(junk, t.TempDir()); err == nil || from != to {
		t.Fatalf("growExt4 on junk: %d %d %v", from, to, err)
	}
}
