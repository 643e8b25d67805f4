package config

import (
	"errors"
	"reflect"
	"runtime"
	"strings"
	"testing"

	"github.com/BurntSushi/toml"
)

// FuzzParse feeds config.toml parsing arbitrary bytes. What must hold:
// no panic; a refusal is one *FileError naming the file and a line that
// exists (or 0); a config that parses validates again, the same way, has
// its defaults applied and sizes every VM create accepts; parsing is
// deterministic and decodes what toml.Decode does; and the bytes
// allocated stay within a bound proportional to the input (a config is a
// few hundred bytes, so a small file must not cost megabytes). The seeds
// (here and in testdata/fuzz/FuzzParse) run in plain go test.
func FuzzParse(f *testing.F) {
	for _, s := range []string{
		"",
		"vmm = \"qemu\"\nqemu_accel = \"tcg\"\nboot_timeout = \"90s\"\n",
		"[network]\nbridge = \"banger0\"\nsubnet = \"10.77.0.0/24\"\ndns_port = 42069\nguests_reach_host = true\n",
		"[vm_defaults]\nvcpu = 2\nmemory = 2048\ndisk_size = \"8G\"\n",
		"[[file_sync]]\nhost = \"~/.gitconfig\"\nguest = \"~/.gitconfig\"\nmode = \"0644\"\n[[file_sync]]\nhost = \"/etc/hosts\"\nguest = \"/root/hosts\"\nmode = 0o600\n",
		"[firecracker]\njailer = true\nuid = 1000\ngid = 1000\n",
		"vmm = ",
		"vmm = 3",
		"[network]\nbrdige = \"x\"",
		"a = [[[[[[[[[[[[[[[[[[[[1]]]]]]]]]]]]]]]]]]]]",
		"x = {a = {b = {c = {d = 1}}}}",
		"[network]\n[network]\n",
		"boot_timeout = \"1h\"\nboot_stall_timeout = \"2h\"",
	} {
		f.Add([]byte(s))
	}
	const path = "/fuzz/config.toml"
	f.Fuzz(func(t *testing.T, data []byte) {
		var before, after runtime.MemStats
		runtime.ReadMemStats(&before)
		c, err := parse(path, data)
		runtime.ReadMemStats(&after)
		if got, limit := after.TotalAlloc-before.TotalAlloc, uint64(4<<20+512*len(data)); got > limit {
			t.Fatalf("parsing %d bytes allocated %d bytes (limit %d)", len(data), got, limit)
		}
		// Deterministic, messages included: of several wrongly typed keys
		// the first is named (toml.Decode alone names any of them).
		c2, err2 := parse(path, data)
		if (err == nil) != (err2 == nil) || (err != nil && err.Error() != err2.Error()) {
			t.Fatalf("parse is not deterministic: %v / %v", err, err2)
		}
		// Key by key decodes what toml.Decode would: same acceptance, same config.
		var ref Config
		refMD, refErr := toml.Decode(string(data), &ref)
		// (Keys differing only in case both land on one field, in map order
		// for toml.Decode: its result is then not one to compare with.)
		if refErr == nil && len(refMD.Undecoded()) == 0 && len(data) <= maxConfigSize && !foldCollision(refMD.Keys()) {
			ref = ref.withDefaults()
			if refErr = ref.Validate(); refErr == nil && (err != nil || !reflect.DeepEqual(ref.FileSyncEntries(), c.FileSyncEntries()) || !equalSansFileSync(ref, c)) {
				t.Fatalf("toml.Decode gives %+v, key by key %+v (%v)", ref, c, err)
			}
		}
		if err == nil && refErr != nil {
			t.Fatalf("accepted what toml.Decode refuses: %v", refErr)
		}
		if err != nil {
			var fe *FileError
			if !errors.As(err, &fe) || fe.Path != path || !strings.HasPrefix(err.Error(), "config "+path) {
				t.Fatalf("refusal is not a FileError naming the file: %#v", err)
			}
			if lines := strings.Count(string(data), "\n") + 1; fe.Line < 0 || fe.Line > lines {
				t.Fatalf("error on line %d of a %d-line file: %v", fe.Line, lines, err)
			}
			return
		}
		if !reflect.DeepEqual(c.FileSyncEntries(), c2.FileSyncEntries()) {
			t.Fatalf("file_sync differs between two parses")
		}
		if err := c.Validate(); err != nil {
			t.Fatalf("parsed config fails validation: %v", err)
		}
		if err := c.Validate(); err != nil {
			t.Fatalf("second validation differs: %v", err)
		}
		if c.withDefaults() != c {
			t.Fatalf("parsed config lacks its defaults: %+v", c)
		}
		// A config accepted here must not fail every vm create later.
		if _, err := Resolve(0, 0, 0, c.VMDefaults, Host{CPUs: 4, MemoryMiB: 8192}); err != nil {
			t.Fatalf("vm_defaults of a valid config do not resolve: %v", err)
		}
	})
}

func equalSansFileSync(a, b Config) bool {
	a.FileSync, b.FileSync = nil, nil
	return a == b
}

// foldCollision: two keys of one table equal but for case.
func foldCollision(keys []toml.Key) bool {
	seen := map[string]string{}
	for _, k := range keys {
		folded := strings.ToLower(k.String())
		if prev, ok := seen[folded]; ok && prev != k.String() {
			return true
		}
		seen[folded] = k.String()
	}
	return false
}
