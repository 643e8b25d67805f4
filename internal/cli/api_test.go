package cli

import (
	"bytes"
	"context"
	"encoding/json"
	"strings"
	"testing"
	"time"

	"github.com/banger-dev/banger/internal/api"
)

func TestAPIKeyFlagsReachRunF(t *testing.T) {
	c, err := parseOnly(t, newAPIKeyCreateCmd, "--name", "ci", "-q")
	if err != nil || c == nil || c.Name != "ci" || !c.Quiet {
		t.Fatalf("create --name ci -q: %+v %v", c, err)
	}
	l, err := parseOnly(t, newAPIKeyListCmd, "--json")
	if err != nil || l == nil || !l.JSON {
		t.Fatalf("ls --json: %+v %v", l, err)
	}
	r, err := parseOnly(t, newAPIKeyRmCmd, "ci")
	if err != nil || r == nil || r.Name != "ci" {
		t.Fatalf("rm ci: %+v %v", r, err)
	}
	for _, args := range [][]string{{}, {"a", "b"}} {
		got, err := parseOnly(t, newAPIKeyRmCmd, args...)
		wantUsage(t, args, got, err)
	}
	got, err := parseOnly(t, newAPIKeyCreateCmd, "extra")
	wantUsage(t, []string{"extra"}, got, err)
	got, err = parseOnly(t, newAPIKeyCreateCmd, "--quiet", "--json")
	wantUsage(t, []string{"--quiet", "--json"}, got, err)
}

type fakeKeys struct{ keys []api.APIKey }

func (f *fakeKeys) APIKeyCreate(_ context.Context, name string) (api.APIKeyCreated, error) {
	k := api.APIKey{Name: name, Prefix: "bgr_abcdef", CreatedAt: time.Unix(10, 0)}
	f.keys = append(f.keys, k)
	return api.APIKeyCreated{APIKey: k, Key: "bgr_abcdefSECRET"}, nil
}

func (f *fakeKeys) APIKeyList(context.Context) ([]api.APIKey, error) { return f.keys, nil }

func (f *fakeKeys) APIKeyDelete(_ context.Context, name string) (api.APIKey, error) {
	for i, k := range f.keys {
		if k.Name == name {
			f.keys = append(f.keys[:i], f.keys[i+1:]...)
			return k, nil
		}
	}
	return api.APIKey{}, api.NotFoundf("no API key named %q", name)
}

func TestAPIKeyRun(t *testing.T) {
	fake := &fakeKeys{}
	var out, errb bytes.Buffer
	io := &iostreams{Out: &out, Err: &errb}
	if err := apiKeyCreateRun(context.Background(), &apiKeyCreateOptions{IO: io, Client: fake, Name: "ci", Quiet: true}); err != nil {
		t.Fatal(err)
	}
	if out.String() != "bgr_abcdefSECRET\n" || errb.Len() != 0 {
		t.Fatalf("create -q: out %q err %q", out.String(), errb.String())
	}
	out.Reset()
	apiKeyCreateRun(context.Background(), &apiKeyCreateOptions{IO: io, Client: fake, Name: "two"})
	if out.String() != "bgr_abcdefSECRET\n" || !strings.Contains(errb.String(), "shown only now") {
		t.Fatalf("create: out %q err %q", out.String(), errb.String())
	}
	out.Reset()
	apiKeyListRun(context.Background(), &apiKeyListOptions{IO: io, Client: fake})
	if !strings.Contains(out.String(), "ci") || !strings.Contains(out.String(), "never") || strings.Contains(out.String(), "SECRET") {
		t.Fatalf("ls: %q", out.String())
	}
	out.Reset()
	apiKeyListRun(context.Background(), &apiKeyListOptions{IO: io, Client: fake, JSON: true})
	var keys []api.APIKey
	if err := json.Unmarshal(out.Bytes(), &keys); err != nil || len(keys) != 2 {
		t.Fatalf("ls --json: %q %v", out.String(), err)
	}
	out.Reset()
	if err := apiKeyRmRun(context.Background(), &apiKeyRmOptions{IO: io, Client: fake, Name: "ci"}); err != nil || !strings.Contains(out.String(), "revoked") {
		t.Fatalf("rm: %q %v", out.String(), err)
	}
	if err := apiKeyRmRun(context.Background(), &apiKeyRmOptions{IO: io, Client: fake, Name: "ci"}); err == nil {
		t.Fatal("rm of a missing key succeeded")
	}
}
