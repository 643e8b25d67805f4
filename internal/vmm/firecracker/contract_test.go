package firecracker

import (
	"encoding/json"
	"net/http"
	"strings"
	"testing"

	"github.com/banger-dev/banger/internal/vmm"
)

// The contract test checks every body the driver can send against the
// upstream OpenAPI spec, so that a field name, type or enum value that
// Firecracker would reject (it denies unknown fields) fails here instead
// of on a real host.

func asJSON(t *testing.T, v any) any {
	t.Helper()
	b, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	var out any
	if err := json.Unmarshal(b, &out); err != nil {
		t.Fatal(err)
	}
	return out
}

func contractSpecs(t *testing.T) map[string]struct {
	spec  vmm.Spec
	files apiFiles
} {
	full := testSpec(t)
	minimal := full
	minimal.Initrd, minimal.Disks, minimal.Net, minimal.Cmdline = "", nil, nil, ""
	noMAC := full
	noMAC.Net = &vmm.NetIface{TAP: "tap1"}
	host := apiFiles{Vsock: "/run/vm/vsock.sock", Log: "/run/vm/fc.log", Metrics: "/run/vm/m.json"}
	jailed := apiFiles{Vsock: "/run/vsock.sock", Log: "/run/fc.log", Metrics: "/run/m.json"}
	type variant = struct {
		spec  vmm.Spec
		files apiFiles
	}
	return map[string]variant{
		"full":    {full, host},
		"minimal": {minimal, host},
		"no mac":  {noMAC, host},
		"jailed":  {jailSpec(full), jailed},
	}
}

func TestContractBootPlan(t *testing.T) {
	api := loadSpec(t)
	versions := []string{"1.10.0", "1.16.1", "1.17.0-dev"}
	for name, c := range contractSpecs(t) {
		for _, vs := range versions {
			v, err := ParseVersion(vs)
			if err != nil {
				t.Fatal(err)
			}
			plan := bootPlan(c.spec, c.files, v)
			plan = append(plan, step{http.MethodPut, "/actions", InstanceActionInfo{ActionType: ActionSendCtrlAltDel}})
			for _, s := range plan {
				at := name + "@" + vs + " " + s.Method + " " + s.Path
				checkAgainstSpec(t, api, at, s.Method, s.Path, s.Body)
				if err := checkFields(v, s.Path, s.Body); err != nil {
					t.Errorf("%s: %v", at, err)
				}
			}
		}
	}
}

func checkAgainstSpec(t *testing.T, api *apiSpec, at, method, path string, body any) {
	t.Helper()
	sc, err := api.bodySchema(method, path)
	if err != nil {
		t.Errorf("%s: %v", at, err)
		return
	}
	if sc == nil {
		t.Errorf("%s: spec takes no body here", at)
		return
	}
	for _, e := range api.validate(asJSON(t, body), sc, "body") {
		t.Errorf("%s: %s", at, e)
	}
	if id, ok := pathID(path); ok {
		obj := asJSON(t, body).(map[string]any)
		if obj["drive_id"] != id && obj["iface_id"] != id {
			t.Errorf("%s: body id does not equal the path id %q", at, id)
		}
		if !apiID.MatchString(id) {
			t.Errorf("%s: id %q is not [A-Za-z0-9_]+", at, id)
		}
	}
}

func pathID(path string) (string, bool) {
	for _, p := range []string{"/drives/", "/network-interfaces/"} {
		if id, ok := strings.CutPrefix(path, p); ok {
			return id, true
		}
	}
	return "", false
}

// TestContractTypes fills every field of every request type, so that
// fields the boot plan does not use yet are checked too.
func TestContractTypes(t *testing.T) {
	api := loadSpec(t)
	yes, mtu := true, 1500
	cases := map[string]any{
		"MachineConfiguration": MachineConfig{VCPUCount: 2, MemSizeMiB: 512, SMT: &yes, TrackDirtyPages: &yes, HugePages: "2M"},
		"BootSource":           BootSource{KernelImagePath: "/k", BootArgs: "console=ttyS0", InitrdPath: "/i"},
		"Drive": Drive{DriveID: "d", IsRootDevice: true, PathOnHost: "/d", IsReadOnly: true,
			PartUUID: "x", CacheType: "Writeback", IOEngine: "Async"},
		"NetworkInterface":   NetworkInterface{IfaceID: "eth0", HostDevName: "tap0", GuestMAC: "06:00:00:00:00:01", MTU: &mtu},
		"Vsock":              Vsock{GuestCID: 3, UDSPath: "/v"},
		"Logger":             Logger{LogPath: "/l", Level: "Debug", ShowLevel: &yes, ShowLogOrigin: &yes, Module: "api_server"},
		"Metrics":            Metrics{MetricsPath: "/m", EmitID: &yes, Properties: map[string]string{"vm": "dev"}},
		"InstanceActionInfo": InstanceActionInfo{ActionType: ActionFlushMetrics},
		"InstanceInfo":       InstanceInfo{AppName: "Firecracker", ID: "x", State: "Not started", VMMVersion: "1.16.1"},
		"FirecrackerVersion": FirecrackerVersion{FirecrackerVersion: "1.16.1"},
	}
	for def, v := range cases {
		sc := api.Definitions[def]
		if sc == nil {
			t.Errorf("spec has no definition %s", def)
			continue
		}
		for _, e := range api.validate(asJSON(t, v), sc, def) {
			t.Error(e)
		}
	}
	for _, a := range []string{ActionInstanceStart, ActionSendCtrlAltDel, ActionFlushMetrics} {
		for _, e := range api.validate(asJSON(t, InstanceActionInfo{a}), api.Definitions["InstanceActionInfo"], a) {
			t.Error(e)
		}
	}
}

// TestContractChecker makes sure the checker itself rejects what
// Firecracker would, so the tests above cannot pass vacuously.
func TestContractChecker(t *testing.T) {
	api := loadSpec(t)
	bad := map[string]string{
		"unknown field":    `{"vcpu_count":1,"mem_size_mib":128,"vcpus":2}`,
		"missing required": `{"vcpu_count":1}`,
		"wrong type":       `{"vcpu_count":"1","mem_size_mib":128}`,
		"bad enum":         `{"vcpu_count":1,"mem_size_mib":128,"huge_pages":"1G"}`,
		"out of range":     `{"vcpu_count":64,"mem_size_mib":128}`,
		"not integer":      `{"vcpu_count":1.5,"mem_size_mib":128}`,
	}
	sc, err := api.bodySchema(http.MethodPut, "/machine-config")
	if err != nil {
		t.Fatal(err)
	}
	for name, body := range bad {
		var v any
		json.Unmarshal([]byte(body), &v)
		if errs := api.validate(v, sc, "body"); len(errs) == 0 {
			t.Errorf("%s: %s accepted", name, body)
		}
	}
	if _, err := api.bodySchema(http.MethodPut, "/no-such-endpoint"); err == nil {
		t.Error("unknown path accepted")
	}
	if _, err := api.bodySchema(http.MethodDelete, "/drives/x"); err == nil {
		t.Error("DELETE /drives accepted")
	}
}
