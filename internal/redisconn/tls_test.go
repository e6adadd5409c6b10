package redisconn_test

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"errors"
	"math/big"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"testing"
	"time"

	"github.com/gatehouse/gatehouse/internal/config"
	"github.com/gatehouse/gatehouse/internal/redisconn"
)

type pki struct {
	dir                            string
	ca, serverCert, serverKey      string
	clientCert, clientKey, otherCA string
	caCert                         *x509.Certificate
	caKey                          *ecdsa.PrivateKey
}

func writePEM(t *testing.T, path, typ string, der []byte) {
	t.Helper()
	if err := os.WriteFile(path, pem.EncodeToMemory(&pem.Block{Type: typ, Bytes: der}), 0o600); err != nil {
		t.Fatal(err)
	}
}

func newCA(t *testing.T, dir, name string) (*x509.Certificate, *ecdsa.PrivateKey, string) {
	t.Helper()
	key, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: name},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour),
		IsCA: true, BasicConstraintsValid: true, KeyUsage: x509.KeyUsageCertSign,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	cert, _ := x509.ParseCertificate(der)
	path := filepath.Join(dir, name+".pem")
	writePEM(t, path, "CERTIFICATE", der)
	return cert, key, path
}

func issue(t *testing.T, p *pki, name string, usage x509.ExtKeyUsage, ips []net.IP) (certFile, keyFile string) {
	t.Helper()
	key, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(time.Now().UnixNano()), Subject: pkix.Name{CommonName: name},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour),
		KeyUsage: x509.KeyUsageDigitalSignature, ExtKeyUsage: []x509.ExtKeyUsage{usage}, IPAddresses: ips,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, p.caCert, &key.PublicKey, p.caKey)
	if err != nil {
		t.Fatal(err)
	}
	certFile, keyFile = filepath.Join(p.dir, name+".pem"), filepath.Join(p.dir, name+"-key.pem")
	writePEM(t, certFile, "CERTIFICATE", der)
	kd, _ := x509.MarshalECPrivateKey(key)
	writePEM(t, keyFile, "EC PRIVATE KEY", kd)
	return certFile, keyFile
}

// startTLSRedis runs a redis-server of its own that speaks only TLS,
// requires client certificates and a password.
func startTLSRedis(t *testing.T, password string) (string, *pki) {
	t.Helper()
	bin, err := exec.LookPath("redis-server")
	if err != nil {
		if os.Getenv("GATEHOUSE_REQUIRE_SERVICES") == "1" {
			t.Fatal("redis-server not installed (GATEHOUSE_REQUIRE_SERVICES=1)")
		}
		t.Skip("redis-server not installed, skipping the TLS test")
	}
	p := &pki{dir: t.TempDir()}
	p.caCert, p.caKey, p.ca = newCA(t, p.dir, "ca")
	_, _, p.otherCA = newCA(t, p.dir, "other-ca")
	p.serverCert, p.serverKey = issue(t, p, "server", x509.ExtKeyUsageServerAuth, []net.IP{net.ParseIP("127.0.0.1")})
	p.clientCert, p.clientKey = issue(t, p, "client", x509.ExtKeyUsageClientAuth, nil)

	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	_, port, _ := net.SplitHostPort(addr)
	ln.Close()
	cmd := exec.Command(bin, "--port", "0", "--tls-port", port, "--bind", "127.0.0.1",
		"--tls-cert-file", p.serverCert, "--tls-key-file", p.serverKey, "--tls-ca-cert-file", p.ca,
		"--tls-auth-clients", "yes", "--requirepass", password, "--save", "", "--appendonly", "no",
		"--dir", p.dir, "--logfile", filepath.Join(p.dir, "redis.log"))
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = cmd.Process.Kill(); _ = cmd.Wait() })
	deadline := time.Now().Add(10 * time.Second)
	for {
		c, err := net.DialTimeout("tcp", addr, time.Second)
		if err == nil {
			c.Close()
			break
		}
		if time.Now().After(deadline) {
			log, _ := os.ReadFile(filepath.Join(p.dir, "redis.log"))
			t.Fatalf("the TLS redis-server did not start: %v\n%s", err, log)
		}
		time.Sleep(20 * time.Millisecond)
	}
	return addr, p
}

func TestTLS(t *testing.T) {
	const password = "tls-test-password"
	addr, p := startTLSRedis(t, password)
	for _, tc := range []struct {
		name        string
		tls         *config.RedisTLS
		password    string
		ok          bool
		unavailable bool
	}{
		{"CA, client certificate and password", &config.RedisTLS{CAFile: p.ca, CertFile: p.clientCert, KeyFile: p.clientKey, MinVersion: "1.2"}, password, true, false},
		{"TLS 1.3 only", &config.RedisTLS{CAFile: p.ca, CertFile: p.clientCert, KeyFile: p.clientKey, MinVersion: "1.3"}, password, true, false},
		{"server from another CA", &config.RedisTLS{CAFile: p.otherCA, CertFile: p.clientCert, KeyFile: p.clientKey}, password, false, true},
		{"no client certificate", &config.RedisTLS{CAFile: p.ca}, password, false, true},
		{"plain TCP to a TLS port", nil, password, false, true},
		{"wrong password", &config.RedisTLS{CAFile: p.ca, CertFile: p.clientCert, KeyFile: p.clientKey}, "wrong", false, true},
		{"server name mismatch", &config.RedisTLS{CAFile: p.ca, CertFile: p.clientCert, KeyFile: p.clientKey, ServerName: "redis.example"}, password, false, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			cfg := config.DefaultRedis()
			cfg.Addresses = []string{addr}
			cfg.TLS = tc.tls
			cfg.Password = tc.password
			cfg.Timeouts.Read = config.Duration(time.Second)
			c, err := redisconn.New(cfg, redisconn.Options{})
			if err != nil {
				t.Fatal(err)
			}
			defer c.Close()
			err = c.Ping(context.Background())
			if (err == nil) != tc.ok || (err != nil && errors.Is(err, redisconn.ErrUnavailable) != tc.unavailable) {
				t.Fatalf("Ping = %v, want ok=%v (unavailable=%v)", err, tc.ok, tc.unavailable)
			}
		})
	}
}
