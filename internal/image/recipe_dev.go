package image

import (
	"strings"

	"github.com/banger-dev/banger/internal/agent/proto"
)

// DevRecipe is debian-bookworm-dev: the default image plus Docker and the
// usual development tools. Recommends stay out, as in the base.
var DevRecipe = &Recipe{
	Build: "golden-dev",
	Key:   "bookworm-dev-r2",
	Packages: []string{
		"docker.io",  // Docker Engine and CLI (Debian's 20.10 build)
		"containerd", // runs Docker's containers (docker.io needs it; named for the record)
		// Compose v1 (1.29, Python): bookworm has no v2 plugin package
		// (docker-compose-plugin is Docker Inc.'s repository only);
		// `docker compose` reaches it through the shim below
		"docker-compose",
		"iptables", // Docker's NAT and port rules; Debian 12 selects its nft backend
		// the cloud kernel enables AppArmor: dockerd confines containers
		// with its docker-default profile, loaded by apparmor_parser
		"apparmor",
		"tmux",                   // sessions that outlive an ssh connection
		"build-essential",        // gcc, g++, make, libc headers: native builds and npm/pip modules
		"jq",                     // JSON on the command line
		"ripgrep",                // rg: fast code search
		"python3", "python3-pip", // Python and pip
		"python3-venv",  // Debian's pip refuses system-wide installs (PEP 668): `python3 -m venv` is the way
		"nodejs", "npm", // Node.js 18 and npm
		"vim-tiny", // an editor (vi), for git commit and quick edits
	},
	Files: map[string]RecipeFile{
		proto.DataDirsFile: {devDataDirs, 0o644},
		// overlay2 named, so that a data root that cannot hold it is an
		// error at start, never a silent fallback to the vfs driver
		"/etc/docker/daemon.json":                          {"{\n  \"storage-driver\": \"overlay2\"\n}\n", 0o644},
		"/etc/systemd/system/docker.service.d/banger.conf": {dockerDropIn, 0o644},
		"/usr/libexec/docker/cli-plugins/docker-compose":   {composeShim, 0o755},
		"/usr/local/bin/docker":                            {dockerWait, 0o755},
	},
	Links: map[string]string{
		// Socket activation: the first client of /run/docker.sock starts
		// dockerd (and containerd), so a VM that never uses Docker boots
		// as fast as the base image.
		"/etc/systemd/system/sockets.target.wants/docker.socket": "/lib/systemd/system/docker.socket",
		// apparmor.service compiles every profile at boot (seconds under
		// emulation); dockerd loads its own profile when it starts.
		"/etc/systemd/system/apparmor.service": "/dev/null",
		// Compose v1 talks to the socket itself: it waits the same way.
		"/usr/local/bin/docker-compose": "docker",
	},
	Drop: []string{
		// enabled by the packages' postinst: started at every boot
		"/etc/systemd/system/multi-user.target.wants/docker.service",
		"/etc/systemd/system/multi-user.target.wants/containerd.service",
		"/etc/systemd/system/sysinit.target.wants/apparmor.service",
	},
}

// devDataDirs puts Docker's and containerd's storage on the overlay disk's
// ext4 (see proto.DataDirsFile).
var devDataDirs = `# Written by banger at image build.
# Directories that need a real ext4 filesystem rather than the overlayfs root
# (overlay2 cannot stack on overlayfs). banger-agent bind-mounts each from the
# VM's overlay disk at boot; they last across vm stop/start.
` + strings.Join([]string{"/var/lib/docker", "/var/lib/containerd"}, "\n") + "\n"

// dockerDropIn loads the modules Docker's bridge network and overlay2
// storage use from the kernel's module disk when dockerd starts, not at
// boot. "-": without a module disk dockerd still starts and names what
// it lacks.
const dockerDropIn = `# Written by banger at image build.
[Service]
ExecStartPre=-/sbin/modprobe -a overlay bridge br_netfilter veth nf_tables nft_chain_nat nft_compat nft_masq xt_MASQUERADE xt_addrtype xt_conntrack xt_nat xt_tcpudp xt_comment xt_mark
`

// composeShim is a Docker CLI plugin, so that `docker compose ...` runs
// Debian's docker-compose (v1) as `docker-compose ...`.
const composeShim = `#!/bin/sh
# Written by banger at image build: "docker compose" runs Debian's
# docker-compose (Compose v1; bookworm packages no v2 plugin).
if [ "$1" = docker-cli-plugin-metadata ]; then
	echo '{"SchemaVersion":"0.1.0","Vendor":"banger (Debian docker-compose)","Version":"1.29.2","ShortDescription":"Docker Compose v1 (Debian docker-compose)"}'
	exit 0
fi
shift # the CLI passes the plugin's name first
exec docker-compose "$@"
`

// dockerWait runs before /usr/bin/docker and /usr/bin/docker-compose (it
// is first in PATH as both names). `vm run`'s command starts as soon as
// banger's agent answers, while systemd may still be starting: until
// docker.socket listens, "Cannot connect to the Docker daemon". It waits
// for the socket while the system is starting (at most a minute), never
// once it is up.
const dockerWait = `#!/bin/sh
# Written by banger at image build: wait for docker.socket while the VM is
# still starting, then run the real command.
n=0
while [ ! -S /run/docker.sock ] && [ -z "${DOCKER_HOST:-}" ] && [ $n -lt 300 ]; do
	case "$(systemctl is-system-running 2>/dev/null)" in
	running | degraded | maintenance | stopping) break ;;
	esac
	n=$((n + 1))
	sleep 0.2
done
exec "/usr/bin/${0##*/}" "$@"
`
