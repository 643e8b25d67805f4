// Package hostcopy is the host's side of `banger vm cp`: it archives a
// local path as a tar stream for the guest (Archive) and extracts a
// guest's tar stream onto the host (Extractor). The guest is untrusted,
// so extraction is hardened: names are bounded, clean and relative, no
// entry is written through a symlink (one from the stream or one already
// in the destination), hard links and special files are refused, and
// setuid/setgid/sticky bits are dropped. All of it runs in the CLI: the
// daemon only relays the stream and never opens the user's paths.
package hostcopy
