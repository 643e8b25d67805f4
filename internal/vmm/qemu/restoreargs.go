package qemu

import (
	"fmt"
	"strings"
)

// What a restored machine does without. A restore's command line is the
// boot's minus what only a boot reads: -kernel, -initrd and -append go to
// the firmware through fw_cfg, and a restored guest is past its boot (a
// reboot ends QEMU: -no-reboot), while QEMU keeps a private copy of the
// kernel image for the machine's lifetime (x86_load_linux: 13.5 MiB of a
// 14 MiB bzImage, in every restored VM). fw_cfg's saved state is its
// cursor, not its files, and no RAM block depends on the kernel
// (x-option-roms=off), so the same state loads. And TCG's translation
// cache is smaller (restoreTCGCacheMiB): a restored VM starts with an
// empty cache that fills with what the guest runs from then on.

// restoreTCGCacheMiB is tb-size for a machine started from a saved
// state. Measured with fork children (1 GiB, idle 20 s, e2e probe on
// this loaded 2-core host): 64 MiB holds ~48 MiB of translations per
// child, 32 MiB ~33 MiB, 16 MiB ~17 MiB; against the parent's 64 MiB in
// the same run, a loop of 300 /bin/true took 0.7–1.0× as long in a
// child at 64, 1.2–1.5× at 32 and 1.6–2.0× at 16, and `ls -lR /usr`
// 0.9–1.0×, 0.6–0.9× and 1.4–1.6×. 32 halves the cache's memory for a
// modest cost.
const restoreTCGCacheMiB = 32

// restoreArgs turns a boot's arguments into a restore's (without
// -incoming).
func restoreArgs(boot []string) []string {
	a := make([]string, 0, len(boot))
	for i := 0; i < len(boot); i++ {
		switch boot[i] {
		case "-kernel", "-initrd", "-append":
			i++ // and its value
			continue
		case "-accel":
			if i+1 < len(boot) && strings.HasPrefix(boot[i+1], "tcg,") {
				a = append(a, boot[i], strings.Replace(boot[i+1], fmt.Sprintf("tb-size=%d", tcgCacheMiB), fmt.Sprintf("tb-size=%d", restoreTCGCacheMiB), 1))
				i++
				continue
			}
		}
		a = append(a, boot[i])
	}
	return a
}
