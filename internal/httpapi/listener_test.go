package httpapi

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"log/slog"
	"math/big"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/banger-dev/banger/internal/config"
)

// TestListenerTLS: with tls_cert and tls_key the API is served over TLS
// only, and Close ends Serve.
func TestListenerTLS(t *testing.T) {
	r := newRig(t)
	dir := t.TempDir()
	certFile, keyFile := filepath.Join(dir, "cert.pem"), filepath.Join(dir, "key.pem")
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	must(t, err)
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "banger"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour), IPAddresses: []net.IP{net.IPv4(127, 0, 0, 1)}}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	must(t, err)
	kb, err := x509.MarshalECPrivateKey(key)
	must(t, err)
	must(t, os.WriteFile(certFile, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), 0o600))
	must(t, os.WriteFile(keyFile, pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: kb}), 0o600))

	cfg := config.API{Listen: "127.0.0.1:0", TLSCert: certFile, TLSKey: keyFile}
	l, err := Listen(cfg, r.srv, slog.Default())
	must(t, err)
	served := make(chan error, 1)
	go func() { served <- l.Serve(cfg.TLSCert, cfg.TLSKey) }()
	pool := x509.NewCertPool()
	parsed, err := x509.ParseCertificate(der)
	must(t, err)
	pool.AddCert(parsed)
	c := &http.Client{Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: pool}}}
	req, _ := http.NewRequest("GET", "https://"+l.Addr().String()+"/v2/sandboxes", nil)
	req.Header.Set("X-API-KEY", r.key)
	resp, err := c.Do(req)
	must(t, err)
	resp.Body.Close()
	if resp.StatusCode != 200 || resp.TLS == nil {
		t.Fatalf("over TLS: %d %v", resp.StatusCode, resp.TLS)
	}
	if resp, err := http.Get("http://" + l.Addr().String() + "/v2/sandboxes"); err == nil && resp.StatusCode == 200 {
		t.Fatal("plain HTTP answered on a TLS listener")
	}
	l.Close(time.Second)
	if err := <-served; err != nil {
		t.Fatalf("Serve after Close: %v", err)
	}
}

func must(t *testing.T, err error) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
}
