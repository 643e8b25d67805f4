package config

import (
	"fmt"
	"net"
	"net/netip"
	"strconv"
)

// API is the [api] table: the daemon's HTTP API for programs
// (internal/httpapi). Off unless Listen is set.
type API struct {
	// Listen is host:port, e.g. "127.0.0.1:3000". An address that is not
	// loopback needs TLSCert and TLSKey: keys travel in every request.
	Listen  string `toml:"listen"`
	TLSCert string `toml:"tls_cert"`
	TLSKey  string `toml:"tls_key"`
}

// Enabled reports whether the daemon serves the HTTP API.
func (a API) Enabled() bool { return a.Listen != "" }

// TLS reports whether the HTTP API is served over TLS.
func (a API) TLS() bool { return a.TLSCert != "" }

func (a API) validate() error {
	if !a.Enabled() {
		if a.TLSCert != "" || a.TLSKey != "" {
			return badKey("api.listen", "api: tls_cert and tls_key are set but listen is not: set listen = \"127.0.0.1:3000\" (or remove them)")
		}
		return nil
	}
	host, port, err := net.SplitHostPort(a.Listen)
	if err != nil {
		return badKey("api.listen", "api.listen = %q: want host:port, e.g. \"127.0.0.1:3000\"", a.Listen)
	}
	if n, err := strconv.Atoi(port); err != nil || n < 1 || n > 65535 {
		return badKey("api.listen", "api.listen = %q: the port must be 1..65535", a.Listen)
	}
	if (a.TLSCert == "") != (a.TLSKey == "") {
		return badKey("api.tls_cert", "api: tls_cert and tls_key go together: set both or neither")
	}
	if !loopback(host) && !a.TLS() {
		return badKey("api.listen", "api.listen = %q is not a loopback address: API keys would cross the network in clear; set tls_cert and tls_key, or listen on 127.0.0.1", a.Listen)
	}
	return nil
}

// loopback reports whether host names only this machine: a loopback IP
// or "localhost". An empty host (":3000") is every address.
func loopback(host string) bool {
	if host == "localhost" {
		return true
	}
	ip, err := netip.ParseAddr(host)
	return err == nil && ip.IsLoopback()
}

// String is the address with its scheme, for logs and status.
func (a API) String() string {
	if !a.Enabled() {
		return ""
	}
	if a.TLS() {
		return fmt.Sprintf("https://%s", a.Listen)
	}
	return fmt.Sprintf("http://%s", a.Listen)
}
