package cli_test

import (
	"bytes"
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/banger-dev/banger/internal/cli"
	"github.com/banger-dev/banger/internal/client"
	"github.com/banger-dev/banger/internal/config"
	"github.com/banger-dev/banger/internal/doctor/report"
)

// standInBangerd writes a script that records its arguments in argv and
// prints stdout, exiting with code.
func standInBangerd(t *testing.T, stdout string, code int) (bin, argv string) {
	t.Helper()
	dir := t.TempDir()
	bin, argv = filepath.Join(dir, "bangerd"), filepath.Join(dir, "argv")
	os.WriteFile(filepath.Join(dir, "out"), []byte(stdout), 0o600)
	script := "#!/bin/sh\nprintf '%s\\n' \"$@\" > " + argv + "\ncat " + filepath.Join(dir, "out") + "\nexit " + string(rune('0'+code)) + "\n"
	if err := os.WriteFile(bin, []byte(script), 0o755); err != nil {
		t.Fatal(err)
	}
	return bin, argv
}

func runDoctor(t *testing.T, bin string, args ...string) (int, string, string) {
	t.Helper()
	var out, errb bytes.Buffer
	env := &cli.Env{In: strings.NewReader(""), Out: &out, Err: &errb,
		Paths: config.Paths{ConfigDir: t.TempDir()}, Client: &client.Client{DaemonBin: bin}}
	code := cli.Run(context.Background(), env, append([]string{"doctor"}, args...))
	return code, out.String(), errb.String()
}

var doctorReport = []report.Check{
	{Status: "pass", Name: "arch", Detail: "linux/amd64"},
	{Status: "warn", Name: "qemu", Detail: "tcg", Fix: "software emulation works"},
	{Status: "fail", Name: "mmdebstrap", Detail: "not found (needed for building the golden image)", Fix: "apt-get install mmdebstrap"},
}

// banger doctor runs `bangerd doctor --json --client <banger>` and renders
// its report: the human lines, the same JSON, exit 1 when a check fails.
func TestDoctorRendersBangerdReport(t *testing.T) {
	js, _ := json.Marshal(doctorReport)
	bin, argv := standInBangerd(t, string(js), 1)
	code, out, errs := runDoctor(t, bin)
	want := "ok    arch         linux/amd64\n" +
		"WARN  qemu         tcg\n" +
		"                   fix: software emulation works\n" +
		"FAIL  mmdebstrap   not found (needed for building the golden image)\n" +
		"                   fix: apt-get install mmdebstrap\n"
	if code != cli.ExitError || out != want {
		t.Fatalf("doctor: exit %d, stderr %q, out\n%s\nwant\n%s", code, errs, out, want)
	}
	self, _ := os.Executable()
	if b, _ := os.ReadFile(argv); string(b) != "doctor\n--json\n--client\n"+self+"\n" {
		t.Fatalf("bangerd ran with %q", b)
	}

	code, out, _ = runDoctor(t, bin, "--json")
	var got []report.Check
	if err := json.Unmarshal([]byte(out), &got); err != nil || code != cli.ExitError || len(got) != 3 || got[2] != doctorReport[2] {
		t.Fatalf("doctor --json: exit %d %v\n%s", code, err, out)
	}

	js, _ = json.Marshal(doctorReport[:2])
	bin, _ = standInBangerd(t, string(js), 0)
	if code, out, _ := runDoctor(t, bin); code != 0 || !strings.HasPrefix(out, "ok    arch") {
		t.Fatalf("doctor without failures: exit %d\n%s", code, out)
	}
}

// --sudoers prints what `bangerd doctor --sudoers` prints: the snippet
// naming bangerd, the helper.
func TestDoctorSudoers(t *testing.T) {
	snippet := "Cmnd_Alias BANGER_NET = /usr/local/bin/bangerd priv ensure\nalice ALL=(root) NOPASSWD: BANGER_NET\n"
	bin, argv := standInBangerd(t, snippet, 0)
	code, out, _ := runDoctor(t, bin, "--sudoers")
	if code != 0 || out != snippet {
		t.Fatalf("doctor --sudoers: %d\n%s", code, out)
	}
	if b, _ := os.ReadFile(argv); string(b) != "doctor\n--sudoers\n" {
		t.Fatalf("bangerd ran with %q", b)
	}
}

// A bangerd that is missing is itself the failing finding; one that
// prints no report is an error naming it and what it said.
func TestDoctorWithoutUsableBangerd(t *testing.T) {
	t.Setenv("PATH", t.TempDir()) // and none beside the test binary
	code, out, _ := runDoctor(t, "")
	if code != cli.ExitError || !strings.HasPrefix(out, "FAIL  bangerd      not found beside ") || !strings.Contains(out, "fix: `make build`") {
		t.Fatalf("missing bangerd: exit %d\n%s", code, out)
	}
	bin, _ := standInBangerd(t, "", 0)
	os.WriteFile(bin, []byte("#!/bin/sh\necho 'bangerd: something broke' >&2\nexit 3\n"), 0o755)
	code, _, errs := runDoctor(t, bin)
	if code != cli.ExitError || !strings.Contains(errs, "something broke") || !strings.Contains(errs, bin+" doctor --json") {
		t.Fatalf("broken bangerd: exit %d %q", code, errs)
	}
}
