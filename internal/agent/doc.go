// Package agent is banger-agent, the static program inside every guest.
//
// It owns two jobs. As the initramfs's /init (init mode) it loads the
// virtio kernel modules, finds the per-VM config drive and the ext4 disks
// by content, assembles the overlayfs root (read-only image + per-VM
// overlay disk, work disk at /root), applies the per-VM configuration
// (hostname, network, SSH keys, files), switches root and hands PID 1 to
// the image's init while a copy of itself keeps serving, or stays PID 1
// when the image has no init. In serve mode it answers the host over the
// guest channel (virtio-serial or vsock) with the protocol of package
// proto: ping, exec with streamed stdio, shutdown.
//
// The host side of that channel is package client.
package agent
