package main

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/pem"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/gatehouse/gatehouse/internal/clientcert"
	"github.com/gatehouse/gatehouse/internal/config"
	"github.com/gatehouse/gatehouse/internal/gateway"
	"github.com/gatehouse/gatehouse/internal/pipeline"
)

func TestDevCA(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "ca")
	code, stdout, stderr := cli(t, "dev-ca", "-dir", dir, "-spiffe-id", "spiffe://partner.example/billing", "-cn", "billing")
	if code != exitOK || stderr != "" {
		t.Fatalf("exit %d: %s", code, stderr)
	}
	for _, want := range []string{"curl --cacert " + dir + "/ca.pem --cert " + dir + "/client.pem --key " + dir + "/client.key https://localhost:8443/", "ca_files: [" + dir + "/ca.pem]"} {
		mustContainStr(t, stdout, want)
	}
	st, err := os.Stat(dir)
	if err != nil || st.Mode().Perm() != 0o700 {
		t.Fatalf("directory: %v %v", st, err)
	}
	for _, f := range devCAFiles {
		st, err := os.Stat(filepath.Join(dir, f))
		if err != nil {
			t.Fatal(err)
		}
		want := os.FileMode(0o644)
		if strings.HasSuffix(f, ".key") {
			want = 0o600
		}
		if st.Mode().Perm() != want {
			t.Errorf("%s: mode %v, want %v", f, st.Mode().Perm(), want)
		}
	}
	// The client certificate verifies for client authentication, with
	// the CA's CRL, and maps to its SPIFFE ID; the server certificate
	// does not pass as a client certificate.
	v, err := clientcert.Load(clientcert.Settings{CAFiles: []string{dir + "/ca.pem"}, CRLFiles: []string{dir + "/ca.crl"}})
	if err != nil {
		t.Fatal(err)
	}
	client, server := readCert(t, dir+"/client.pem"), readCert(t, dir+"/server.pem")
	res := v.Verify([]*x509.Certificate{client})
	if !res.Verified() || res.Facts().Claims[clientcert.ClaimSPIFFEID] != "spiffe://partner.example/billing" || client.Subject.CommonName != "billing" {
		t.Fatalf("client certificate: %q %v", res.Reason, res.Err)
	}
	if res := v.Verify([]*x509.Certificate{server}); res.Verified() {
		t.Fatal("the server certificate verified as a client certificate")
	}
	if _, err := server.Verify(x509.VerifyOptions{Roots: v.ClientCAs(), DNSName: "localhost"}); err != nil {
		t.Fatal(err)
	}
	if len(server.IPAddresses) != 2 {
		t.Fatalf("server IPs %v", server.IPAddresses)
	}

	// A second run refuses to overwrite; -force does.
	before, _ := os.ReadFile(dir + "/ca.key")
	if code, _, stderr := cli(t, "dev-ca", "-dir", dir); code != exitError || !strings.Contains(stderr, "-force") {
		t.Fatalf("second run: exit %d, %s", code, stderr)
	}
	if after, _ := os.ReadFile(dir + "/ca.key"); string(after) != string(before) {
		t.Fatal("the CA key changed without -force")
	}
	if code, _, stderr := cli(t, "dev-ca", "-dir", dir, "-force"); code != exitOK {
		t.Fatalf("-force: exit %d, %s", code, stderr)
	}
	if after, _ := os.ReadFile(dir + "/ca.key"); string(after) == string(before) {
		t.Fatal("-force did not replace the CA")
	}
	if st, _ := os.Stat(dir + "/ca.key"); st.Mode().Perm() != 0o600 {
		t.Fatalf("ca.key after -force: %v", st.Mode().Perm())
	}
	for _, bad := range [][]string{{"-spiffe-id", "https://x/y"}, {"-spiffe-id", "spiffe://x"}, {"-days", "0"}} {
		if code, _, _ := cli(t, append([]string{"dev-ca", "-dir", t.TempDir()}, bad...)...); code != exitUsage {
			t.Errorf("%v: exit %d", bad, code)
		}
	}
}

// TestDevCARoundTrip: the printed listener, with the files dev-ca wrote,
// serves HTTPS to the client certificate and refuses a client without one
// (require mode), as docs/mtls.md shows with curl.
func TestDevCARoundTrip(t *testing.T) {
	dir := t.TempDir()
	if code, _, stderr := cli(t, "dev-ca", "-dir", dir); code != exitOK {
		t.Fatal(stderr)
	}
	cfgText := `
listeners:
  - name: mtls
    address: "127.0.0.1:0"
    tls:
      cert_file: ` + dir + `/server.pem
      key_file: ` + dir + `/server.key
      client_certificates:
        ca_files: [` + dir + `/ca.pem]
        crl_files: [` + dir + `/ca.crl]
        mode: require
admin: {disabled: true}
routes:
  - name: hello
    public: true
    match: {path_prefix: /}
    upstream: {targets: ["builtin:echo"]}
`
	cfg, file, err := config.Parse("dev.yaml", []byte(cfgText), os.LookupEnv)
	if err != nil {
		t.Fatal(err)
	}
	g, err := gateway.New(cfg, file, gateway.Options{Pipeline: pipeline.Options{Stdout: io.Discard, Stderr: io.Discard}})
	if err != nil {
		t.Fatal(err)
	}
	g.Serve()
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		_ = g.Shutdown(ctx)
	})
	pool := x509.NewCertPool()
	pool.AddCert(readCert(t, dir+"/ca.pem"))
	pair, err := tls.LoadX509KeyPair(dir+"/client.pem", dir+"/client.key")
	if err != nil {
		t.Fatal(err)
	}
	url := "https://localhost:" + portOf(g.Addr("mtls").String()) + "/"
	for _, withCert := range []bool{true, false} {
		cfg := &tls.Config{RootCAs: pool}
		if withCert {
			cfg.Certificates = []tls.Certificate{pair}
		}
		cl := &http.Client{Timeout: 5 * time.Second, Transport: &http.Transport{TLSClientConfig: cfg}}
		res, err := cl.Get(url)
		if !withCert {
			if err == nil {
				res.Body.Close()
				t.Fatal("served without a client certificate in require mode")
			}
			continue
		}
		if err != nil {
			t.Fatal(err)
		}
		_, _ = io.Copy(io.Discard, res.Body)
		res.Body.Close()
		if res.StatusCode != 200 {
			t.Fatalf("status %d", res.StatusCode)
		}
	}
}

func portOf(addr string) string { return addr[strings.LastIndexByte(addr, ':')+1:] }

func readCert(t *testing.T, path string) *x509.Certificate {
	t.Helper()
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	b, _ := pem.Decode(data)
	if b == nil {
		t.Fatalf("%s: no PEM", path)
	}
	c, err := x509.ParseCertificate(b.Bytes)
	if err != nil {
		t.Fatal(err)
	}
	return c
}

func mustContainStr(t *testing.T, s, sub string) {
	t.Helper()
	if !strings.Contains(s, sub) {
		t.Fatalf("%q does not contain %q", s, sub)
	}
}
