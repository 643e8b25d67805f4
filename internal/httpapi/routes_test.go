package httpapi

import (
	"context"
	"encoding/json"
	"fmt"
	"net/url"
	"slices"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/banger-dev/banger/internal/api"
	"github.com/banger-dev/banger/internal/progress"
	"github.com/banger-dev/banger/internal/store"
)

func (r *rig) create(body string) string {
	r.t.Helper()
	st, out := r.do("POST", "/sandboxes", body)
	if st != 201 {
		r.t.Fatalf("create %s: %d %s", body, st, out)
	}
	return decodeAs[sandboxJSON](r.t, out).SandboxID
}

func (r *rig) record(id string) store.Sandbox {
	r.t.Helper()
	vm, err := r.vms.Show(context.Background(), id)
	if err != nil {
		r.t.Fatal(err)
	}
	rec, _ := r.recs.GetSandbox(context.Background(), vm.ID)
	return rec
}

func ids(t *testing.T, body string) []string {
	var out []string
	for _, l := range decodeAs[[]listedSandbox](t, body) {
		out = append(out, l.SandboxID)
	}
	sort.Strings(out)
	return out
}

func TestUnknownSandbox(t *testing.T) {
	r := newRig(t)
	r.vms.add("cli-made", store.StateRunning)
	for _, rt := range []struct{ method, path, body string }{
		{"GET", "/sandboxes/nope", ""},
		{"GET", "/sandboxes/cli", ""}, // a prefix is not an id
		{"DELETE", "/sandboxes/nope", ""},
		{"POST", "/sandboxes/nope/timeout", `{"timeout":10}`},
		{"POST", "/sandboxes/nope/refreshes", `{}`},
		{"POST", "/sandboxes/nope/pause", ``},
		{"POST", "/sandboxes/nope/resume", `{}`},
		{"POST", "/sandboxes/nope/connect", `{"timeout":10}`},
		{"POST", "/v2/sandboxes/nope/connect", `{"timeout":10}`},
		{"POST", "/sandboxes/nope/fork", `{}`},
		{"PUT", "/sandboxes/nope/network", `{}`},
		{"GET", "/sandboxes/nope/metrics", ""},
		{"GET", "/sandboxes/nope/logs", ""},
		{"GET", "/v2/sandboxes/nope/logs", ""},
		{"GET", "/banger/sandboxes/nope/snapshots", ""},
		{"POST", "/banger/sandboxes/nope/snapshots", `{}`},
		{"POST", "/banger/sandboxes/nope/snapshots/s/restore", `{}`},
		{"DELETE", "/banger/sandboxes/nope/snapshots/s", ""},
	} {
		st, body := r.do(rt.method, rt.path, rt.body)
		if st != 404 {
			t.Errorf("%s %s: %d %s, want 404", rt.method, rt.path, st, body)
		}
	}
	if _, ok := r.vms.vms["cli-made"]; !ok || len(r.vms.vms) != 1 {
		t.Fatalf("requests for unknown sandboxes changed VMs: %v", r.vms.vms)
	}
	st, body := r.do("GET", "/nowhere", "")
	wantError(t, st, body, 404, "no route GET /nowhere")
}

func TestListFilters(t *testing.T) {
	r := newRig(t)
	a := r.create(`{"templateID":"base","metadata":{"user":"a b","app":"x"}}`)
	b := r.create(`{"templateID":"alpine","metadata":{"user":"c","app":"x"}}`)
	cli := r.vms.add("cli-made", store.StateRunning)
	r.vms.add("broken", store.StateFailed)
	r.vms.vms[b].State = store.StateSaved
	q := func(query string) []string {
		st, body := r.do("GET", "/v2/sandboxes?"+query, "")
		if st != 200 {
			t.Fatalf("list ?%s: %d %s", query, st, body)
		}
		return ids(t, body)
	}
	// E2B's SDK encodes each key and value, then the whole query
	md := url.QueryEscape(url.Values{"user": {url.QueryEscape("a b")}}.Encode())
	for _, tc := range []struct {
		query string
		want  []string
	}{
		{"", []string{cli.Name, a, b}},
		{"state=running", []string{cli.Name, a}},
		{"state=paused", []string{b}},
		{"state=running,paused", []string{cli.Name, a, b}},
		{"metadata=" + md, []string{a}},
		{"metadata=" + url.QueryEscape("app=x"), []string{a, b}},
		{"metadata=" + url.QueryEscape("app=y"), nil},
		{"template=alpine", []string{b}},
	} {
		sort.Strings(tc.want)
		if got := q(tc.query); !slices.Equal(got, tc.want) {
			t.Errorf("?%s: %v, want %v", tc.query, got, tc.want)
		}
	}
	if st, body := r.do("GET", "/sandboxes", ""); st != 200 || !slices.Equal(ids(t, body), []string{cli.Name, a}) {
		t.Errorf("GET /sandboxes (running): %s", body)
	}
	// pages: limit and the token of the next one
	st, body := r.do("GET", "/v2/sandboxes?limit=2", "")
	if st != 200 || len(ids(t, body)) != 2 {
		t.Fatalf("limit 2: %s", body)
	}
	if got := q("limit=2&nextToken=2"); len(got) != 1 {
		t.Fatalf("second page: %v", got)
	}
	for _, bad := range []string{"state=stopped", "limit=x", "nextToken=-1", "metadata=%25zz"} {
		if st, _ := r.do("GET", "/v2/sandboxes?"+bad, ""); st != 400 {
			t.Errorf("?%s: %d, want 400", bad, st)
		}
	}
	// what a listed sandbox says
	st, body = r.do("GET", "/sandboxes/"+a, "")
	d := decodeAs[sandboxDetail](t, body)
	if st != 200 || d.State != "running" || d.Metadata["user"] != "a b" || d.CPUCount != 2 || d.MemoryMB != 1024 ||
		d.DiskSizeMB != 8192 || !d.EndAt.Equal(r.now.Add(DefaultTimeout)) || d.EnvdAccessToken == "" || d.Lifecycle.OnTimeout != "kill" {
		t.Fatalf("GET /sandboxes/%s: %d %+v", a, st, d)
	}
	st, body = r.do("GET", "/sandboxes/"+cli.ID, "") // by VM id too
	if d := decodeAs[sandboxDetail](t, body); st != 200 || d.SandboxID != cli.Name || !d.EndAt.Equal(noDeadline) || d.TemplateID != cli.Image {
		t.Fatalf("a CLI-made VM by id: %d %+v", st, d)
	}
	if st, _ := r.do("GET", "/sandboxes/broken", ""); st != 404 {
		t.Fatalf("a failed VM: %d, want 404", st)
	}
}

func TestTimeoutRefreshAndKill(t *testing.T) {
	r := newRig(t)
	id := r.create(`{"templateID":"base","timeout":300}`)
	if st, body := r.do("POST", "/sandboxes/"+id+"/timeout", `{"timeout":30}`); st != 204 {
		t.Fatalf("timeout: %d %s", st, body)
	}
	if dl := r.record(id).Deadline; !dl.Equal(r.now.Add(30 * time.Second)) {
		t.Fatalf("deadline %v after timeout 30", dl)
	}
	r.do("POST", "/sandboxes/"+id+"/refreshes", `{"duration":10}`) // earlier than the deadline: no change
	if dl := r.record(id).Deadline; !dl.Equal(r.now.Add(30 * time.Second)) {
		t.Fatalf("a shorter refresh moved the deadline to %v", dl)
	}
	r.do("POST", "/sandboxes/"+id+"/refreshes", `{"duration":120}`)
	if dl := r.record(id).Deadline; !dl.Equal(r.now.Add(120 * time.Second)) {
		t.Fatalf("refresh 120: deadline %v", dl)
	}
	for _, tc := range []struct{ path, body string }{
		{"/timeout", ``}, {"/timeout", `{}`}, {"/timeout", `{"timeout":"x"}`}, {"/timeout", `{"timeout":-5}`},
		{"/refreshes", `{"duration":3601}`},
	} {
		if st, _ := r.do("POST", "/sandboxes/"+id+tc.path, tc.body); st != 400 {
			t.Errorf("%s %s: %d, want 400", tc.path, tc.body, st)
		}
	}
	// a CLI-made VM gets a record when the API first sets its timeout
	cli := r.vms.add("cli-made", store.StateRunning)
	if st, _ := r.do("POST", "/sandboxes/cli-made/timeout", `{"timeout":5}`); st != 204 {
		t.Fatalf("timeout of a CLI-made VM: %d", st)
	}
	if rec := r.record("cli-made"); rec.VMID != cli.ID || rec.AccessToken == "" || !rec.Deadline.Equal(r.now.Add(5*time.Second)) {
		t.Fatalf("adopted record %+v", rec)
	}
	if st, _ := r.do("DELETE", "/sandboxes/"+id, ""); st != 204 {
		t.Fatalf("delete: %d", st)
	}
	if _, ok := r.vms.vms[id]; ok {
		t.Fatal("the VM is still there")
	}
	if st, _ := r.do("DELETE", "/sandboxes/"+id, ""); st != 404 {
		t.Fatalf("delete again: %d", st)
	}
}

func TestPauseResumeConnect(t *testing.T) {
	r := newRig(t)
	id := r.create(`{"templateID":"base","timeout":300}`)
	if st, body := r.do("POST", "/sandboxes/"+id+"/pause", ``); st != 204 {
		t.Fatalf("pause: %d %s", st, body)
	}
	if vm := r.vms.vms[id]; vm.State != store.StateSaved || !r.record(id).Deadline.IsZero() {
		t.Fatalf("after pause: %s, deadline %v", vm.State, r.record(id).Deadline)
	}
	st, body := r.do("POST", "/sandboxes/"+id+"/pause", ``)
	wantError(t, st, body, 409, "already paused")
	if st, _ := r.do("POST", "/sandboxes/"+id+"/timeout", `{"timeout":5}`); st != 404 {
		t.Fatalf("timeout of a paused sandbox: %d, want 404", st)
	}
	st, body = r.do("POST", "/v2/sandboxes/"+id+"/connect", `{"timeout":60}`)
	if st != 201 || decodeAs[sandboxJSON](t, body).EnvdAccessToken == "" || r.vms.vms[id].State != store.StateRunning {
		t.Fatalf("connect a paused sandbox: %d %s (%s)", st, body, r.vms.vms[id].State)
	}
	if dl := r.record(id).Deadline; !dl.Equal(r.now.Add(time.Minute)) {
		t.Fatalf("deadline after connect: %v", dl)
	}
	// connecting a running one only extends its time to live
	r.now = r.now.Add(time.Second)
	if st, _ := r.do("POST", "/sandboxes/"+id+"/connect", `{"timeout":10}`); st != 200 {
		t.Fatalf("connect a running sandbox: %d", st)
	}
	if dl := r.record(id).Deadline; !dl.Equal(r.now.Add(59 * time.Second)) {
		t.Fatalf("a shorter connect moved the deadline to %v", dl)
	}
	st, body = r.do("POST", "/sandboxes/"+id+"/resume", `{}`)
	wantError(t, st, body, 409, "already running")
	// memory false: a stop, so the sandbox boots from its disks
	r.do("POST", "/sandboxes/"+id+"/pause", `{"memory":false}`)
	if r.vms.vms[id].State != store.StateStopped {
		t.Fatalf("pause memory=false: %s", r.vms.vms[id].State)
	}
	st, _ = r.do("POST", "/sandboxes/"+id+"/resume", `{"timeout":20,"autoPause":true}`)
	if rec := r.record(id); st != 201 || !rec.AutoPause || !rec.Deadline.Equal(r.now.Add(20*time.Second)) {
		t.Fatalf("resume: %d %+v", st, rec)
	}
	// a VM paused with `vm pause` resumes (not starts)
	r.vms.vms[id].State = store.StatePaused
	r.vms.calls = nil
	r.do("POST", "/sandboxes/"+id+"/connect", `{"timeout":20}`)
	if !slices.Contains(r.vms.calls, "resume") {
		t.Fatalf("connect of a paused VM called %v", r.vms.calls)
	}
	// a failing resume is the service's error, the sandbox stays paused
	r.vms.vms[id].State = store.StateSaved
	r.vms.failNext["start"] = api.Conflictf("only qemu 7.2 can restore it")
	st, body = r.do("POST", "/sandboxes/"+id+"/connect", `{"timeout":20}`)
	wantError(t, st, body, 409, "only qemu")
	if r.vms.vms[id].State != store.StateSaved {
		t.Fatalf("a failed connect changed the state to %s", r.vms.vms[id].State)
	}
}

type fakeFork struct{ r *rig }

func (f fakeFork) Fork(ctx context.Context, p api.ForkParams, _ progress.Reporter) (api.ForkResult, error) {
	res := api.ForkResult{Parent: p.Name}
	for i := 1; i <= p.Count; i++ {
		res.Children = append(res.Children, f.r.vms.add(fmt.Sprintf("%s-%d", p.As, i), store.StateRunning))
	}
	return res, nil
}

type fakeNet struct{ got []api.SetNetParams }

func (f *fakeNet) SetNetPolicy(ctx context.Context, p api.SetNetParams, _ progress.Reporter) (api.VM, error) {
	f.got = append(f.got, p)
	if p.AllowOut != nil && slices.Contains(*p.AllowOut, "bad") {
		return api.VM{}, api.Invalidf("allow-out %q: not an address, CIDR or domain", "bad")
	}
	return api.VM{Name: p.Name}, nil
}

func TestForkAndNetwork(t *testing.T) {
	r := newRig(t)
	id := r.create(`{"templateID":"base","metadata":{"k":"v"}}`)
	st, body := r.do("POST", "/sandboxes/"+id+"/fork", `{"count":2}`)
	wantError(t, st, body, 501, "fork")
	st, body = r.do("PUT", "/sandboxes/"+id+"/network", `{"allowOut":["1.1.1.1"]}`)
	wantError(t, st, body, 501, "network policy")
	net := &fakeNet{}
	r.build(Deps{Fork: fakeFork{r}, Network: net})
	st, body = r.do("POST", "/sandboxes/"+id+"/fork", `{"count":2,"timeout":30}`)
	var res []forkResult
	json.Unmarshal([]byte(body), &res)
	if st != 201 || len(res) != 2 || res[0].Sandbox == nil || res[0].Sandbox.EnvdAccessToken == "" || !strings.HasPrefix(res[0].Sandbox.SandboxID, "sb-") {
		t.Fatalf("fork: %d %s", st, body)
	}
	if rec := r.record(res[1].Sandbox.SandboxID); rec.Metadata["k"] != "v" || !rec.Deadline.Equal(r.now.Add(30*time.Second)) {
		t.Fatalf("child record %+v", rec)
	}
	for _, bad := range []string{`{"count":0}`, `{"count":101}`, `{"timeout":-1}`} {
		if st, _ := r.do("POST", "/sandboxes/"+id+"/fork", bad); st != 400 {
			t.Errorf("fork %s: %d", bad, st)
		}
	}
	// PUT replaces the rules; an omitted list is cleared, the mode kept
	if st, _ := r.do("PUT", "/sandboxes/"+id+"/network", `{"allowOut":["1.1.1.1"]}`); st != 204 ||
		len(net.got) != 1 || !slices.Equal(*net.got[0].AllowOut, []string{"1.1.1.1"}) || net.got[0].DenyOut == nil || len(*net.got[0].DenyOut) != 0 || net.got[0].Mode != nil {
		t.Fatalf("network: %d %+v", st, net.got)
	}
	if st, _ := r.do("PUT", "/sandboxes/"+id+"/network", `{"allow_internet_access":false}`); st != 204 ||
		net.got[1].Mode == nil || *net.got[1].Mode != api.NetIsolated || len(*net.got[1].AllowOut) != 0 {
		t.Fatalf("network, internet off: %d %+v", st, net.got[1])
	}
	st, body = r.do("PUT", "/sandboxes/"+id+"/network", `{"allowOut":["bad"]}`)
	wantError(t, st, body, 400, "not an address")
	// a create's network is the new VM's policy from its first packet
	r.create(`{"templateID":"base","allow_internet_access":false,"network":{"allowOut":["pypi.org"],"denyOut":["10.0.0.0/8"]}}`)
	if n := r.vms.lastCreate.Net; n == nil || n.Mode != api.NetIsolated || !slices.Equal(n.AllowOut, []string{"pypi.org"}) || !slices.Equal(n.DenyOut, []string{"10.0.0.0/8"}) {
		t.Fatalf("create with a network: %+v", n)
	}
	for _, body := range []string{`{"templateID":"base"}`, `{"templateID":"base","network":{}}`, `{"templateID":"base","network":{"allowOut":[]}}`} {
		r.create(body)
		if r.vms.lastCreate.Net != nil {
			t.Fatalf("create %s: policy %+v, want the configured default", body, r.vms.lastCreate.Net)
		}
	}
	// rules without internet access given keep the configured mode ("")
	r.create(`{"templateID":"base","network":{"denyOut":["10.0.0.0/8"]}}`)
	if n := r.vms.lastCreate.Net; n == nil || n.Mode != "" || !slices.Equal(n.DenyOut, []string{"10.0.0.0/8"}) {
		t.Fatalf("create with rules only: %+v", n)
	}
	// a policy the service refuses fails the create and leaves no VM
	before := len(r.vms.vms)
	st, _ = r.do("POST", "/sandboxes", `{"templateID":"base","network":{"allowOut":["bad"]}}`)
	if st != 400 || len(r.vms.vms) != before {
		t.Fatalf("create with a bad policy: %d, VMs %d → %d", st, before, len(r.vms.vms))
	}
}

func TestMetricsLogsTemplates(t *testing.T) {
	r := newRig(t)
	id := r.create(`{"templateID":"base"}`)
	if st, body := r.do("GET", "/sandboxes/"+id+"/metrics", ""); st != 200 || len(decodeAs[[]metricJSON](t, body)) != 0 {
		t.Fatalf("metrics before a sample: %d %s", st, body)
	}
	r.vms.stats = api.VMStats{SampledAt: r.now, CPUs: 2, CPUPercent: 12.5, MemTotalBytes: 1 << 30, MemUsedBytes: 1 << 20, WorkDiskBytes: 10, WorkDiskUsed: 1, RootDiskBytes: 20, RootDiskUsed: 2}
	_, body := r.do("GET", "/sandboxes/"+id+"/metrics", "")
	if m := decodeAs[[]metricJSON](t, body); len(m) != 1 || m[0].CPUUsedPct != 12.5 || m[0].DiskTotal != 30 || m[0].DiskUsed != 3 || m[0].TimestampUnix != r.now.Unix() {
		t.Fatalf("metrics: %s", body)
	}
	if st, body := r.do("GET", "/sandboxes/"+id+"/logs", ""); st != 200 || body != "{\"logs\":[],\"logEntries\":[]}\n" {
		t.Fatalf("logs before a boot: %d %q", st, body)
	}
	r.vms.log = "one\r\ntwo\nthree needle\n"
	_, body = r.do("GET", "/sandboxes/"+id+"/logs?limit=2", "")
	var v1 struct{ Logs []logLine }
	json.Unmarshal([]byte(body), &v1)
	if len(v1.Logs) != 2 || v1.Logs[0].Line != "two" {
		t.Fatalf("logs limit 2: %s", body)
	}
	_, body = r.do("GET", "/v2/sandboxes/"+id+"/logs?search=needle", "")
	var v2 struct{ Logs []logEntry }
	json.Unmarshal([]byte(body), &v2)
	if len(v2.Logs) != 1 || v2.Logs[0].Message != "three needle" || v2.Logs[0].Level != "info" {
		t.Fatalf("v2 logs search: %s", body)
	}
	if st, _ := r.do("GET", "/sandboxes/"+id+"/logs?limit=x", ""); st != 400 {
		t.Fatalf("bad limit: %d", st)
	}
	_, body = r.do("GET", "/templates", "")
	tpl := decodeAs[[]templateJSON](t, body)
	if len(tpl) != 2 || tpl[0].TemplateID != "debian-bookworm" || !slices.Contains(tpl[0].Aliases, "base") || tpl[0].BuildStatus != "ready" {
		t.Fatalf("templates: %s", body)
	}
}

func TestBangerRoutes(t *testing.T) {
	r := newRig(t)
	st, body := r.do("GET", "/openapi.json", "")
	var doc struct {
		OpenAPI string         `json:"openapi"`
		Paths   map[string]any `json:"paths"`
	}
	if err := json.Unmarshal([]byte(body), &doc); st != 200 || err != nil || doc.OpenAPI == "" {
		t.Fatalf("openapi.json: %d %v", st, err)
	}
	// every route the document names is served (and says 404 for an
	// unknown sandbox, not "no route")
	for p := range doc.Paths {
		path := strings.NewReplacer("{sandboxID}", "nope", "{snapshot}", "s").Replace(p)
		for _, m := range []string{"GET", "POST", "DELETE"} {
			if _, ok := doc.Paths[p].(map[string]any)[strings.ToLower(m)]; !ok {
				continue
			}
			if st, body := r.do(m, path, ""); st == 404 && strings.Contains(body, "no route") {
				t.Errorf("%s %s is in openapi.json but not served", m, p)
			}
		}
	}
	id := r.create(`{"templateID":"base"}`)
	if st, body := r.do("GET", "/banger/images", ""); st != 200 || len(decodeAs[[]api.Image](t, body)) != 2 {
		t.Fatalf("images: %d %s", st, body)
	}
	if st, body := r.do("POST", "/banger/sandboxes/"+id+"/snapshots", `{"name":"s1"}`); st != 201 || decodeAs[api.Snapshot](t, body).Name != "s1" {
		t.Fatalf("snapshot create: %d %s", st, body)
	}
	if st, body := r.do("GET", "/banger/sandboxes/"+id+"/snapshots", ""); st != 200 || len(decodeAs[[]api.Snapshot](t, body)) != 1 {
		t.Fatalf("snapshot ls: %d %s", st, body)
	}
	if st, _ := r.do("POST", "/banger/sandboxes/"+id+"/snapshots/one/restore", `{"force":true}`); st != 200 {
		t.Fatalf("restore: %d", st)
	}
	if st, _ := r.do("DELETE", "/banger/sandboxes/"+id+"/snapshots/one", ""); st != 204 {
		t.Fatalf("snapshot rm: %d", st)
	}
	st, body = r.do("DELETE", "/banger/sandboxes/"+id+"/snapshots/two", "")
	wantError(t, st, body, 404, "no snapshot")
	st, body = r.do("POST", "/banger/sandboxes/"+id+"/snapshots", `{"name":`)
	wantError(t, st, body, 400, "bad JSON")
}
