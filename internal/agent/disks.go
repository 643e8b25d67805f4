package agent

import (
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"slices"
	"strings"

	"github.com/banger-dev/banger/internal/agent/proto"
)

// ext4 superblock layout: the superblock starts 1024 bytes into the
// device; the magic and the filesystem UUID sit at fixed offsets in it.
const (
	ext4SuperblockOffset = 1024
	ext4MagicOffset      = 0x38
	ext4UUIDOffset       = 0x68
	ext4Magic            = 0xEF53
)

// errNotExt4 means a device has no ext4 (or ext2/3) superblock.
var errNotExt4 = errors.New("no ext4 superblock")

// ext4UUID reads the filesystem UUID of an ext4 device or image.
func ext4UUID(r io.ReaderAt) (string, error) {
	sb := make([]byte, ext4UUIDOffset+16)
	if _, err := r.ReadAt(sb, ext4SuperblockOffset); err != nil {
		if errors.Is(err, io.EOF) {
			return "", errNotExt4
		}
		return "", fmt.Errorf("read superblock: %w", err)
	}
	if binary.LittleEndian.Uint16(sb[ext4MagicOffset:]) != ext4Magic {
		return "", errNotExt4
	}
	return formatUUID(sb[ext4UUIDOffset : ext4UUIDOffset+16]), nil
}

func formatUUID(u []byte) string {
	return fmt.Sprintf("%x-%x-%x-%x-%x", u[0:4], u[4:6], u[6:8], u[8:10], u[10:16])
}

// probedDisk is what boot learned about one block device.
type probedDisk struct {
	Dev    string // /dev/vda
	UUID   string // ext4 UUID, "" when the device is not ext4
	Config bool   // the banger config drive
}

// matchDisks assigns a device to every wanted role. Roles with a UUID are
// matched first and claim their device; a role without one (the base
// image, whose UUID the host does not control) takes the one ext4 device
// left over. It fails, saying what is missing, until every role has
// exactly one candidate.
func matchDisks(want []proto.GuestDisk, have []probedDisk) (map[string]string, error) {
	roles := map[string]string{}
	claimed := map[string]bool{}
	assign := func(role string, candidates []string, what string) error {
		if _, dup := roles[role]; dup {
			return fmt.Errorf("disk role %s listed twice", role)
		}
		switch len(candidates) {
		case 0:
			return fmt.Errorf("no disk for role %s (%s)", role, what)
		case 1:
			roles[role] = candidates[0]
			claimed[candidates[0]] = true
			return nil
		default:
			return fmt.Errorf("several disks for role %s (%s): %s", role, what, strings.Join(candidates, ", "))
		}
	}
	for _, w := range want {
		if w.UUID == "" {
			continue
		}
		var c []string
		for _, d := range have {
			if d.UUID != "" && strings.EqualFold(d.UUID, w.UUID) {
				c = append(c, d.Dev)
			}
		}
		if err := assign(w.Role, c, "ext4 UUID "+w.UUID); err != nil {
			return nil, err
		}
	}
	for _, w := range want {
		if w.UUID != "" {
			continue
		}
		var c []string
		for _, d := range have {
			if d.UUID != "" && !claimed[d.Dev] {
				c = append(c, d.Dev)
			}
		}
		slices.Sort(c)
		if err := assign(w.Role, c, "the ext4 disk no other role claims"); err != nil {
			return nil, err
		}
	}
	return roles, nil
}

// wantedDisks is the disk list of cfg; a config without one still needs
// the image.
func wantedDisks(cfg proto.GuestConfig) []proto.GuestDisk {
	if len(cfg.Disks) == 0 {
		return []proto.GuestDisk{{Role: proto.RoleBase}}
	}
	return cfg.Disks
}
