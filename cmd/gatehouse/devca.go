package main

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"math/big"
	"net"
	"net/url"
	"os"
	"path/filepath"
	"time"

	"github.com/spiffe/go-spiffe/v2/spiffeid"
)

// devCAFiles are the files dev-ca writes, in the order it writes them.
var devCAFiles = []string{"ca.pem", "ca.key", "ca.crl", "server.pem", "server.key", "client.pem", "client.key"}

func cmdDevCA(args []string, stdout, stderr io.Writer) int {
	fs := newFlags("dev-ca", "dev-ca [-dir DIR] [-force] [-spiffe-id ID] [-cn NAME] [-days N]\n\n"+
		"Write a development CA, a server certificate (localhost, 127.0.0.1, ::1) and a client\n"+
		"certificate (SPIFFE ID and common name) for trying mutual TLS. Not for production:\n"+
		"the CA's key is written to disk unprotected.", stderr)
	dir := fs.String("dir", "gatehouse-dev-ca", "directory to write to (created if missing, mode 0700)")
	force := fs.Bool("force", false, "overwrite existing files")
	id := fs.String("spiffe-id", "spiffe://dev.gatehouse.local/client", "the client certificate's SPIFFE ID (URI SAN)")
	cn := fs.String("cn", "dev-client", "the client certificate's common name")
	days := fs.Int("days", 30, "validity of the CA and certificates, in days (1 to 825)")
	if code, stop := parse(fs, args, stdout); stop {
		return code
	}
	if *days < 1 || *days > 825 {
		fmt.Fprintln(stderr, "gatehouse dev-ca: -days must be between 1 and 825")
		return exitUsage
	}
	sid, err := spiffeid.FromString(*id)
	if err != nil || sid.Path() == "" {
		fmt.Fprintf(stderr, "gatehouse dev-ca: -spiffe-id %q is not a SPIFFE ID of a workload (spiffe://trust-domain/path)\n", *id)
		return exitUsage
	}
	if err := writeDevCA(*dir, *force, sid, *cn, time.Duration(*days)*24*time.Hour); err != nil {
		fmt.Fprintf(stderr, "gatehouse dev-ca: %v\n", err)
		return exitError
	}
	abs, err := filepath.Abs(*dir)
	if err != nil {
		abs = *dir
	}
	fmt.Fprintf(stdout, `Wrote a development CA and certificates to %[1]s
(not for production: ca.key is the CA's private key, unprotected).

  ca.pem, ca.key, ca.crl   the CA, its key and an empty CRL
  server.pem, server.key   server certificate for localhost, 127.0.0.1 and ::1
  client.pem, client.key   client certificate: CN=%[2]s, URI SAN %[3]s

A listener that asks for client certificates:

listeners:
  - name: mtls
    address: "127.0.0.1:8443"
    tls:
      cert_file: %[1]s/server.pem
      key_file: %[1]s/server.key
      client_certificates:
        ca_files: [%[1]s/ca.pem]
        crl_files: [%[1]s/ca.crl]

A round trip through it (route methods: [mtls]; see docs/mtls.md):

  curl --cacert %[1]s/ca.pem --cert %[1]s/client.pem --key %[1]s/client.key https://localhost:8443/
`, abs, *cn, sid)
	return exitOK
}

func writeDevCA(dir string, force bool, id spiffeid.ID, cn string, validity time.Duration) error {
	if !force {
		for _, f := range devCAFiles {
			if _, err := os.Lstat(filepath.Join(dir, f)); err == nil {
				return fmt.Errorf("%s exists; use -force to overwrite (or another -dir)", filepath.Join(dir, f))
			} else if !errors.Is(err, fs.ErrNotExist) {
				return err
			}
		}
	}
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return err
	}
	now := time.Now().Add(-5 * time.Minute) // a little slack for clock skew
	caKey, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return err
	}
	caSerial, err := serialNumber()
	if err != nil {
		return err
	}
	caTmpl := &x509.Certificate{
		SerialNumber:          caSerial,
		Subject:               pkix.Name{CommonName: "Gatehouse development CA", Organization: []string{"Gatehouse dev-ca"}},
		NotBefore:             now,
		NotAfter:              now.Add(validity),
		IsCA:                  true,
		BasicConstraintsValid: true,
		MaxPathLenZero:        true,
		KeyUsage:              x509.KeyUsageCertSign | x509.KeyUsageCRLSign,
	}
	caDER, err := x509.CreateCertificate(rand.Reader, caTmpl, caTmpl, caKey.Public(), caKey)
	if err != nil {
		return err
	}
	ca, err := x509.ParseCertificate(caDER)
	if err != nil {
		return err
	}
	crl, err := x509.CreateRevocationList(rand.Reader, &x509.RevocationList{
		Number: big.NewInt(1), ThisUpdate: now, NextUpdate: now.Add(validity),
	}, ca, caKey)
	if err != nil {
		return err
	}
	issue := func(t *x509.Certificate) ([]byte, crypto.Signer, error) {
		key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
		if err != nil {
			return nil, nil, err
		}
		serial, err := serialNumber()
		if err != nil {
			return nil, nil, err
		}
		t.SerialNumber, t.NotBefore, t.NotAfter = serial, now, now.Add(validity)
		t.KeyUsage = x509.KeyUsageDigitalSignature
		der, err := x509.CreateCertificate(rand.Reader, t, ca, key.Public(), caKey)
		return der, key, err
	}
	srvDER, srvKey, err := issue(&x509.Certificate{
		Subject:     pkix.Name{CommonName: "localhost"},
		DNSNames:    []string{"localhost"},
		IPAddresses: []net.IP{net.IPv4(127, 0, 0, 1), net.IPv6loopback},
		ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
	})
	if err != nil {
		return err
	}
	cliDER, cliKey, err := issue(&x509.Certificate{
		Subject:     pkix.Name{CommonName: cn, Organization: []string{"Gatehouse dev-ca"}},
		URIs:        []*url.URL{id.URL()},
		ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth},
	})
	if err != nil {
		return err
	}
	files := map[string][]byte{
		"ca.pem":     pemBlock("CERTIFICATE", caDER),
		"ca.crl":     pemBlock("X509 CRL", crl),
		"server.pem": pemBlock("CERTIFICATE", srvDER),
		"client.pem": pemBlock("CERTIFICATE", cliDER),
	}
	for name, key := range map[string]crypto.Signer{"ca.key": caKey, "server.key": srvKey, "client.key": cliKey} {
		der, err := x509.MarshalPKCS8PrivateKey(key)
		if err != nil {
			return err
		}
		files[name] = pemBlock("PRIVATE KEY", der)
	}
	for _, name := range devCAFiles {
		mode := os.FileMode(0o644)
		if filepath.Ext(name) == ".key" {
			mode = 0o600
		}
		if err := writeNew(filepath.Join(dir, name), files[name], mode, force); err != nil {
			return err
		}
	}
	return nil
}

// writeNew writes a file, refusing to replace one unless force (then it
// replaces it by rename, so a key never exists with wider permissions).
func writeNew(path string, data []byte, mode os.FileMode, force bool) error {
	if !force {
		f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_EXCL, mode)
		if err != nil {
			return err
		}
		if _, err := f.Write(data); err != nil {
			f.Close()
			return err
		}
		return f.Close()
	}
	tmp, err := os.CreateTemp(filepath.Dir(path), ".dev-ca-*")
	if err != nil {
		return err
	}
	defer os.Remove(tmp.Name())
	if err := tmp.Chmod(mode); err != nil {
		tmp.Close()
		return err
	}
	if _, err := tmp.Write(data); err != nil {
		tmp.Close()
		return err
	}
	if err := tmp.Close(); err != nil {
		return err
	}
	return os.Rename(tmp.Name(), path)
}

func pemBlock(typ string, der []byte) []byte {
	return pem.EncodeToMemory(&pem.Block{Type: typ, Bytes: der})
}

// serialNumber is a random positive 127-bit serial (RFC 5280: at most 20
// octets, unpredictable).
func serialNumber() (*big.Int, error) {
	n, err := rand.Int(rand.Reader, new(big.Int).Lsh(big.NewInt(1), 127))
	if err != nil {
		return nil, err
	}
	return n.Add(n, big.NewInt(1)), nil
}
