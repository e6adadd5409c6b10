package tlsclient_test

import (
	"crypto/tls"
	"encoding/json"
	"errors"
	"fmt"
	"path/filepath"
	"strings"
	"testing"

	"github.com/gatehouse/gatehouse/internal/clientcert/certtest"
	"github.com/gatehouse/gatehouse/internal/tlsclient"
)

func TestLoad(t *testing.T) {
	ca := certtest.NewCA(t, "ca")
	dir := t.TempDir()
	caFile := certtest.Write(t, dir, "ca.pem", ca.PEM())
	c := ca.Issue(t, certtest.Options{CN: "gw"})
	certFile := certtest.Write(t, dir, "c.pem", c.PEM())
	keyFile := certtest.Write(t, dir, "c.key", c.KeyPEM(t))
	otherKey := certtest.Write(t, dir, "o.key", ca.Issue(t, certtest.Options{CN: "o"}).KeyPEM(t))
	junk := certtest.Write(t, dir, "junk.pem", []byte("-----BEGIN NOTHING-----\n"))
	big := certtest.Write(t, dir, "big.pem", []byte(strings.Repeat("x", tlsclient.MaxFileBytes+1)))
	for _, tc := range []struct {
		name    string
		files   tlsclient.Files
		wantKey string // FileError.Key; "" success
	}{
		{"everything", tlsclient.Files{CAFiles: []string{caFile}, CertFile: certFile, KeyFile: keyFile, ServerName: "a.internal", MinVersion: "1.3"}, ""},
		{"nothing", tlsclient.Files{}, ""},
		{"missing CA", tlsclient.Files{CAFiles: []string{caFile, filepath.Join(dir, "absent")}}, "ca_files[1]"},
		{"CA without certificate", tlsclient.Files{CAFiles: []string{junk}}, "ca_files[0]"},
		{"oversized CA", tlsclient.Files{CAFiles: []string{big}}, "ca_files[0]"},
		{"cert without key", tlsclient.Files{CertFile: certFile}, "cert_file"},
		{"mismatched key", tlsclient.Files{CertFile: certFile, KeyFile: otherKey}, "cert_file"},
		{"missing key", tlsclient.Files{CertFile: certFile, KeyFile: filepath.Join(dir, "absent")}, "key_file"},
		{"bad version", tlsclient.Files{MinVersion: "1.1"}, "min_version"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			s, err := tlsclient.Load(tc.files)
			var fe *tlsclient.FileError
			switch {
			case tc.wantKey == "" && err != nil:
				t.Fatalf("Load: %v", err)
			case tc.wantKey != "" && (!errors.As(err, &fe) || fe.Key != tc.wantKey):
				t.Fatalf("Load error %v, want one for %s", err, tc.wantKey)
			case tc.wantKey == "":
				if _, err := s.Config(); err != nil {
					t.Fatalf("Config: %v", err)
				}
			}
		})
	}
}

// TestSettingsNeverShowTheKey: the JSON (resource keys) and the printed
// forms hold digests, not PEM; equal contents give equal encodings, and a
// changed file a different one.
func TestSettingsNeverShowTheKey(t *testing.T) {
	ca := certtest.NewCA(t, "ca")
	dir := t.TempDir()
	c := ca.Issue(t, certtest.Options{CN: "gw"})
	files := tlsclient.Files{
		CAFiles:  []string{certtest.Write(t, dir, "ca.pem", ca.PEM())},
		CertFile: certtest.Write(t, dir, "c.pem", c.PEM()), KeyFile: certtest.Write(t, dir, "c.key", c.KeyPEM(t)),
	}
	s1, err := tlsclient.Load(files)
	if err != nil {
		t.Fatal(err)
	}
	s2, _ := tlsclient.Load(files)
	j1, _ := json.Marshal(s1)
	j2, _ := json.Marshal(s2)
	for _, out := range []string{string(j1), s1.String(), fmt.Sprintf("%v", s1), fmt.Sprintf("%+v", s1), fmt.Sprintf("%#v", s1)} {
		if strings.Contains(out, "PRIVATE KEY") || strings.Contains(out, "BEGIN") {
			t.Fatalf("settings print their PEM: %s", out)
		}
	}
	if s1 != s2 || string(j1) != string(j2) {
		t.Fatal("the same files give different settings")
	}
	rotated := ca.Issue(t, certtest.Options{CN: "gw"})
	certtest.Replace(t, dir, "c.pem", rotated.PEM())
	certtest.Replace(t, dir, "c.key", rotated.KeyPEM(t))
	s3, err := tlsclient.Load(files)
	if err != nil {
		t.Fatal(err)
	}
	j3, _ := json.Marshal(s3)
	if string(j3) == string(j1) {
		t.Fatal("a rotated certificate encodes like the old one")
	}
}

// TestClientCertificateAlwaysPresented: the configured certificate is
// offered even when the server's request names other CAs.
func TestClientCertificateAlwaysPresented(t *testing.T) {
	ca := certtest.NewCA(t, "ca")
	dir := t.TempDir()
	c := ca.Issue(t, certtest.Options{CN: "gw"})
	s, err := tlsclient.Load(tlsclient.Files{CertFile: certtest.Write(t, dir, "c.pem", c.PEM()), KeyFile: certtest.Write(t, dir, "c.key", c.KeyPEM(t))})
	if err != nil {
		t.Fatal(err)
	}
	cfg, err := s.Config()
	if err != nil {
		t.Fatal(err)
	}
	got, err := cfg.GetClientCertificate(&tls.CertificateRequestInfo{AcceptableCAs: [][]byte{[]byte("some other CA")}})
	if err != nil || got == nil || len(got.Certificate) == 0 {
		t.Fatalf("GetClientCertificate = %v, %v", got, err)
	}
	if cfg.MinVersion != tls.VersionTLS12 || cfg.InsecureSkipVerify {
		t.Fatalf("MinVersion %x InsecureSkipVerify %v", cfg.MinVersion, cfg.InsecureSkipVerify)
	}
	if zero, err := (tlsclient.Settings{}).Config(); zero != nil || err != nil {
		t.Fatalf("zero settings: %v, %v; want nil (the transport's default)", zero, err)
	}
}
