// Package firecracker is banger's driver for the Firecracker VMM. It speaks
// Firecracker's HTTP-over-unix-socket API with its own small client
// (firecracker-go-sdk is not available to this module), written from the
// upstream OpenAPI spec (shared/reference/firecracker-api.yaml) and the
// integration notes beside it.
//
// Process model. Firecracker is started with exec.Command (never tied to a
// request context), in its own session, with stdin on /dev/null, its stdout
// (the guest serial console) in Spec.ConsoleLog and its stderr in
// <Dir>/firecracker.log. One goroutine per VM reaps it and closes Done; a
// VMM started by an earlier daemon is re-adopted by Attach, which polls the
// PID (guarded by /proc/PID/stat starttime) because it is not our child.
// The driver installs no signal handlers and never sends SIGTERM or SIGHUP:
// Firecracker does not handle SIGTERM gracefully and exits on SIGHUP.
//
// Stopping. Shutdown sends Ctrl-Alt-Del; Firecracker exits only when the
// guest then resets (reboot=k). A guest poweroff never ends Firecracker on
// x86, so the guest side must reboot, not power off, to stop the VM.
//
// Boot. No drive is the root device: banger's root is assembled inside the
// guest by banger-agent running from the initramfs, and Firecracker does not
// require a root drive, so every drive goes in with is_root_device=false and
// Firecracker adds no root= argument. boot_args replaces Firecracker's
// default command line, so the driver sends its own base line (see
// BaseBootArgs) followed by Spec.Cmdline.
//
// Versions. GET /version is read before any configuration call and every
// request body is checked against a table of fields newer than the oldest
// release (fieldMinVersion): Firecracker rejects unknown fields, so a field
// the running binary does not know is never sent.
//
// Privileges. Without a jailer, Firecracker runs as the daemon's user and
// needs read-write access to /dev/kvm, read access to the kernel, initrd and
// images, and an existing TAP it may open (one created with no owner, or
// owned by that user). With JailerOptions, the jailer must be started as
// root: it chroots to <ChrootBase>/<basename of the firecracker binary>/
// <id>/root, creates device nodes there, joins cgroups and an optional
// network namespace, then drops to UID:GID before exec'ing Firecracker.
// The TAP must be openable by UID:GID (and inside the netns, if one is
// given); cgroup directories the jailer creates are not removed here. The driver hard-links the VM's
// files into the chroot (so they must be on the chroot's filesystem),
// rewrites every API path to its in-chroot name, and removes the chroot
// after the process exits. The jailer is not daemonized, so the process the
// driver starts becomes Firecracker itself and is reaped normally.
package firecracker
