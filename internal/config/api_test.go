package config

import (
	"strings"
	"testing"
)

func TestAPIConfig(t *testing.T) {
	for _, tc := range []struct {
		body, want string // want: "" loads, else a part of the error
	}{
		{"", ""},
		{"[api]\nlisten = \"127.0.0.1:3000\"\n", ""},
		{"[api]\nlisten = \"[::1]:3000\"\n", ""},
		{"[api]\nlisten = \"localhost:3000\"\n", ""},
		{"[api]\nlisten = \"0.0.0.0:3000\"\ntls_cert = \"/c.pem\"\ntls_key = \"/k.pem\"\n", ""},
		{"[api]\nlisten = \"0.0.0.0:3000\"\n", "not a loopback address"},
		{"[api]\nlisten = \":3000\"\n", "not a loopback address"},
		{"[api]\nlisten = \"10.0.0.1:3000\"\ntls_cert = \"/c.pem\"\n", "go together"},
		{"[api]\nlisten = \"127.0.0.1\"\n", "want host:port"},
		{"[api]\nlisten = \"127.0.0.1:99999\"\n", "port must be"},
		{"[api]\ntls_cert = \"/c.pem\"\ntls_key = \"/k.pem\"\n", "listen is not"},
		{"[api]\nlisten = \"127.0.0.1:3000\"\nlisen = 1\n", "lisen"},
	} {
		c, err := Load(writeConfig(t, tc.body))
		if err == nil {
			err = c.Validate()
		}
		switch {
		case tc.want == "" && err != nil:
			t.Errorf("%q: %v", tc.body, err)
		case tc.want != "" && (err == nil || !strings.Contains(err.Error(), tc.want)):
			t.Errorf("%q: error %v, want one containing %q", tc.body, err, tc.want)
		}
	}
	c, _ := Load(writeConfig(t, "[api]\nlisten = \"127.0.0.1:3000\"\n"))
	if !c.API.Enabled() || c.API.String() != "http://127.0.0.1:3000" {
		t.Fatalf("API = %+v (%s)", c.API, c.API.String())
	}
}
