package main

import (
	"strings"
	"testing"
)

// `bangerd priv` takes exactly one operation and refuses a request for
// another (the allow-list sudoers relies on).
func TestPriv(t *testing.T) {
	var out, errb strings.Builder
	if code := priv(nil, strings.NewReader(""), &out, &errb); code != 2 || !strings.Contains(errb.String(), "usage: bangerd priv OP") {
		t.Fatalf("no operation: exit %d %q", code, errb.String())
	}
	errb.Reset()
	code := priv([]string{"show"}, strings.NewReader(`{"op":"teardown","config":{"bridge":"banger0","subnet":"10.77.0.0/24"}}`), &out, &errb)
	if code != 1 || !strings.HasPrefix(errb.String(), "bangerd priv: ") || out.Len() != 0 {
		t.Fatalf("smuggled operation: exit %d %q %q", code, errb.String(), out.String())
	}
}
