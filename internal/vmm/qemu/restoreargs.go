package qemu

// What a restored machine does without. A restore's command line is the
// boot's minus what only a boot reads: -kernel, -initrd and -append go to
// the firmware through fw_cfg, and a restored guest is past its boot (a
// reboot ends QEMU: -no-reboot), while QEMU keeps a private copy of the
// kernel image for the machine's lifetime (x86_load_linux: 13.5 MiB of a
// 14 MiB bzImage, in every restored VM). fw_cfg's saved state is its
// cursor, not its files, and no RAM block depends on the kernel
// (x-option-roms=off), so the same state loads.
//
// TCG's translation cache stays the boot's (tcgCacheMiB). A smaller one
// for restored machines was measured with fork children (1 GiB, idle
// 20 s, on this loaded 2-core host): a child holds ~48 MiB of
// translations with 64, ~33 with 32, ~17 with 16; against the parent's
// 64 MiB in the same run, a loop of 300 /bin/true took 0.7–1.0× as long
// in a child at 64, 1.2–1.5× at 32 and 1.6–2.0× at 16, and `ls -lR /usr`
// 0.9–1.0×, 0.6–0.9× and 1.4–1.6×; and a warm clone, which continues a
// whole systemd boot after its restore, ran `vm run` in 8.5 s with 32
// against 4.2 s cold. Not worth the memory.

// restoreArgs turns a boot's arguments into a restore's (without
// -incoming).
func restoreArgs(boot []string) []string {
	a := make([]string, 0, len(boot))
	for i := 0; i < len(boot); i++ {
		switch boot[i] {
		case "-kernel", "-initrd", "-append":
			i++ // and its value
			continue
		}
		a = append(a, boot[i])
	}
	return a
}
