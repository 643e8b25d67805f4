package api

import (
	"encoding/json"
	"reflect"
	"testing"
)

// RunParams and ExecParams embed the agent's ExecRequest; their JSON is
// the one earlier CLIs and daemons speak (fields at the top level, no
// "ExecRequest" object), so api.Version stays.
func TestExecParamsWireIsUnchanged(t *testing.T) {
	old := `{"create":{"name":"box"},"argv":["ls","-l"],"env":["A=1"],"dir":"/srv","rm":true,"tty":{"rows":24,"cols":80},"user":"node"}`
	var rp RunParams
	if err := json.Unmarshal([]byte(old), &rp); err != nil {
		t.Fatal(err)
	}
	want := RunParams{Create: CreateParams{Name: "box"}, Remove: true, ExecRequest: ExecRequest{
		Argv: []string{"ls", "-l"}, Env: []string{"A=1"}, Dir: "/srv", TTY: &WinSize{Rows: 24, Cols: 80}, User: "node"}}
	if !reflect.DeepEqual(rp, want) {
		t.Fatalf("decoded %+v\nwant %+v", rp, want)
	}
	b, err := json.Marshal(rp)
	if err != nil {
		t.Fatal(err)
	}
	var got, exp map[string]any
	json.Unmarshal(b, &got)
	json.Unmarshal([]byte(old), &exp)
	if !reflect.DeepEqual(got, exp) {
		t.Fatalf("encoded %s\nwant   %s", b, old)
	}
	ep := ExecParams{Name: "dev", ExecRequest: ExecRequest{Argv: []string{"true"}}}
	if b, _ := json.Marshal(ep); string(b) != `{"name":"dev","argv":["true"]}` {
		t.Fatalf("exec params: %s", b)
	}
}
