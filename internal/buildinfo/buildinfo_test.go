package buildinfo

import (
	"context"
	"os"
	"runtime/debug"
	"testing"
)

func TestFromBuildInfo(t *testing.T) {
	vcs := []debug.BuildSetting{{Key: "vcs.revision", Value: "0123456789abcdef0123"}, {Key: "vcs.modified", Value: "true"}}
	tests := []struct {
		name     string
		bi       *debug.BuildInfo
		ldflags  string
		want     string
		wantFrom string
	}{
		{"ldflags wins", &debug.BuildInfo{Settings: vcs}, "v1.2.3", "v1.2.3", "ldflags"},
		{"dev counts as unset", &debug.BuildInfo{Settings: vcs}, "dev", "dev-0123456789ab-dirty", "vcs"},
		{"go install @version", &debug.BuildInfo{Main: debug.Module{Version: "v0.4.0"}}, "", "v0.4.0", "module"},
		{"devel module, no vcs", &debug.BuildInfo{Main: debug.Module{Version: "(devel)"}}, "", "dev", "none"},
		{"no build info", nil, "", "dev", "none"},
	}
	for _, tt := range tests {
		got := fromBuildInfo(tt.bi, tt.ldflags)
		if got.Version != tt.want || got.From != tt.wantFrom {
			t.Errorf("%s: %+v, want %s from %s", tt.name, got, tt.want, tt.wantFrom)
		}
	}
}

func TestLdflagsVersion(t *testing.T) {
	for flags, want := range map[string]string{
		"-s -w -X github.com/banger-dev/banger/internal/buildinfo.Version=v2 -X github.com/banger-dev/banger/internal/agent.Version=v1": "v2",
		"-s -w -X github.com/banger-dev/banger/internal/agent.Version=v1-3-gabc":                                                        "v1-3-gabc",
		"-X=github.com/banger-dev/banger/internal/daemon.Version=dev":                                                                   "",
		"-s -w": "",
	} {
		bi := &debug.BuildInfo{Settings: []debug.BuildSetting{{Key: "-ldflags", Value: flags}}}
		if got := ldflagsVersion(bi); got != want {
			t.Errorf("%q: %q, want %q", flags, got, want)
		}
	}
}

func TestOfFile(t *testing.T) {
	self, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	info, err := OfFile(self)
	if err != nil || info.Version == "" || info.Go == "" {
		t.Fatalf("OfFile(test binary) = %+v, %v", info, err)
	}
	if _, err := OfFile("/etc/hostname"); err == nil {
		t.Fatal("OfFile read build info from a text file")
	}
}

func TestAgentVersion(t *testing.T) {
	dir := t.TempDir()
	stamped := dir + "/stamped"
	os.WriteFile(stamped, []byte("#!/bin/sh\necho banger-agent v9.9.9\n"), 0o755)
	if v, err := AgentVersion(context.Background(), stamped); err != nil || v != "v9.9.9" {
		t.Fatalf("stamped agent: %q, %v", v, err)
	}
	// A rebuilt binary (new size or time) is asked again.
	os.WriteFile(stamped, []byte("#!/bin/sh\necho banger-agent v10.0.0-rc1\n"), 0o755)
	if v, _ := AgentVersion(context.Background(), stamped); v != "v10.0.0-rc1" {
		t.Fatalf("after a rebuild: %q", v)
	}
	notAgent := dir + "/other"
	os.WriteFile(notAgent, []byte("#!/bin/sh\necho hello\n"), 0o755)
	if v, err := AgentVersion(context.Background(), notAgent); err == nil {
		t.Fatalf("not an agent: %q", v)
	}
	if _, err := AgentVersion(context.Background(), dir+"/missing"); err == nil {
		t.Fatal("missing file: no error")
	}
}
