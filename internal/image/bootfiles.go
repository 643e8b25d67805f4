package image

import (
	"path"
	"strings"
)

// pathNode is what finding boot files needs to know about one path of an
// image, whatever holds the image (a flattened layer set, an ext4 file).
type pathNode struct {
	exists  bool
	symlink bool
	link    string // symlink target
	exec    bool   // a regular file with an execute bit
}

// maxSymlinkHops bounds symlink chains as the kernel does.
const maxSymlinkHops = 40

// resolvePath follows symlinks through an image as the guest will and
// returns the final "/"-rooted path and its node (exists false when the
// path or a link on the way does not exist).
func resolvePath(p string, lookup func(string) pathNode) (string, pathNode) {
	cur, parts, hops := "/", strings.Split(p, "/"), 0
	for len(parts) > 0 {
		part := parts[0]
		parts = parts[1:]
		switch part {
		case "", ".":
			continue
		case "..":
			cur = path.Dir(cur)
			continue
		}
		next := path.Join(cur, part)
		n := lookup(next)
		if !n.exists {
			return "", pathNode{}
		}
		if n.symlink {
			if hops++; hops > maxSymlinkHops {
				return "", pathNode{}
			}
			if strings.HasPrefix(n.link, "/") {
				cur = "/"
			}
			parts = append(strings.Split(n.link, "/"), parts...)
			continue
		}
		cur = next
	}
	return cur, lookup(cur)
}

// bootFiles is whether an image can boot its own init and serve ssh.
type bootFiles struct {
	Init, InitTarget string // "/sbin/init" and what it resolves to, when executable
	HasSSHD          bool
}

// findBootFiles looks for /sbin/init and sshd the way the guest would.
func findBootFiles(lookup func(string) pathNode) bootFiles {
	var b bootFiles
	if p, n := resolvePath("/sbin/init", lookup); n.exec {
		b.Init, b.InitTarget = "/sbin/init", p
	}
	for _, p := range []string{"/usr/sbin/sshd", "/sbin/sshd"} {
		if _, n := resolvePath(p, lookup); n.exec {
			b.HasSSHD = true
		}
	}
	return b
}
