package agent

import (
	"bufio"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
)

// account is who an exec runs as, resolved in the guest.
type account struct {
	name     string // "" for a uid the guest's passwd does not know
	uid, gid uint32
	groups   []uint32 // supplementary groups
	home     string
}

// lookupAccount resolves an OCI-style user ("name", "uid", "name:group",
// "uid:gid", any mix) against root's /etc/passwd and /etc/group, as
// container runtimes do: a name must exist; a bare uid need not (it then
// runs with gid 0 and / as home). Supplementary groups are the user's
// memberships in /etc/group, unless a group is given.
func lookupAccount(root, spec string) (account, error) {
	userPart, groupPart, hasGroup := strings.Cut(spec, ":")
	if userPart == "" || (hasGroup && groupPart == "") {
		return account{}, fmt.Errorf("user %q: want name or uid, optionally :group or :gid", spec)
	}
	passwd, err := readColonFile(filepath.Join(root, "etc/passwd"), 7)
	if err != nil {
		return account{}, err
	}
	a := account{home: "/"}
	var entry []string
	if uid, err := strconv.ParseUint(userPart, 10, 32); err == nil {
		a.uid = uint32(uid)
		for _, e := range passwd {
			if e[2] == userPart {
				entry = e
				break
			}
		}
	} else {
		for _, e := range passwd {
			if e[0] == userPart {
				entry = e
				break
			}
		}
		if entry == nil {
			return account{}, fmt.Errorf("user %q: no such user in the guest's /etc/passwd", userPart)
		}
	}
	if entry != nil {
		uid, err1 := strconv.ParseUint(entry[2], 10, 32)
		gid, err2 := strconv.ParseUint(entry[3], 10, 32)
		if err1 != nil || err2 != nil {
			return account{}, fmt.Errorf("user %q: malformed /etc/passwd entry", userPart)
		}
		a.name, a.uid, a.gid, a.home = entry[0], uint32(uid), uint32(gid), entry[5]
	}
	groups, err := readColonFile(filepath.Join(root, "etc/group"), 4)
	if err != nil && !os.IsNotExist(err) {
		return account{}, err
	}
	if hasGroup {
		gid, err := strconv.ParseUint(groupPart, 10, 32)
		if err != nil {
			found := false
			for _, g := range groups {
				if g[0] == groupPart {
					if gid, err = strconv.ParseUint(g[2], 10, 32); err == nil {
						found = true
					}
					break
				}
			}
			if !found {
				return account{}, fmt.Errorf("group %q: no such group in the guest's /etc/group", groupPart)
			}
		}
		a.gid = uint32(gid)
	}
	a.groups = []uint32{a.gid}
	if a.name != "" && !hasGroup { // an explicit group is the only one, as with runc
		for _, g := range groups {
			for _, m := range strings.Split(g[3], ",") {
				if gid, err := strconv.ParseUint(g[2], 10, 32); err == nil && m == a.name && uint32(gid) != a.gid {
					a.groups = append(a.groups, uint32(gid))
				}
			}
		}
	}
	return a, nil
}

// readColonFile reads a passwd-style file: lines of at least n
// colon-separated fields (shorter and comment lines are skipped).
func readColonFile(path string, n int) ([][]string, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	var out [][]string
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		line := sc.Text()
		if strings.HasPrefix(line, "#") {
			continue
		}
		if fields := strings.Split(line, ":"); len(fields) >= n {
			out = append(out, fields)
		}
	}
	return out, sc.Err()
}
