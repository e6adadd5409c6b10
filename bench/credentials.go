package main

// The scenarios of issues 12 and 13: client certificates, DPoP,
// introspection and the revocation list, each measured beside the bare
// proxy like the others.

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/gatehouse/gatehouse/internal/adminclient"
)

// revokedEntries is how many revocation entries the jwt-revocation
// scenario's Gatehouse holds while it is measured.
const revokedEntries = 5000

func (b *bed) credentialScenarios(warmRS256 func(int) (credentials, error)) []*scenario {
	return []*scenario{
		{Name: "bare-proxy-tls", Kind: kindReference, server: "bare", path: "/bare", tls: true,
			Description: "The bare proxy over HTTPS (client certificate asked for and verified, keep-alive): what TLS alone costs; mtls's ratio divided by this one is Gatehouse's cost over a TLS proxy."},
		{Name: "mtls", Kind: kindWarm, server: "gatehouse", path: "/mtls/x", tls: true, reportOnly: true, check: b.checkMTLS,
			Description: "A client certificate (P-256, SPIFFE ID) on an HTTPS listener with client_certificates, route with methods [mtls]; keep-alive connections, so the handshake is amortized. The bare proxy is plain HTTP: the ratio includes TLS record cost."},
		{Name: "mtls-handshake", Kind: kindWarm, server: "gatehouse", path: "/mtls/x", tls: true, noKeepAlive: true, reportOnly: true,
			Description: "mtls with keep-alives off: a full TLS 1.3 handshake with client-certificate verification on every request (no session resumption), against the bare proxy's plain keep-alive connections."},
		{Name: "jwt-dpop", Kind: kindCold, server: "gatehouse", path: "/dpop/x", headers: []string{"Authorization", "DPoP"},
			headerSets: b.dpopProofs, reportOnly: true, check: b.checkDPoP,
			Description: "A DPoP-bound ES256 token (repeated: verified-token cache) with a fresh ES256 proof every request (pre-signed for each phase): proof signature, claims and the jti replay cache."},
		{Name: "introspection-cached", Kind: kindWarm, server: "gatehouse", path: "/opaque/x", header: "Authorization", reportOnly: true,
			credential: func(int) (credentials, error) { return repeated("Bearer " + b.opaque), nil }, check: b.checkIntrospectionCached,
			Description: "An opaque token (repeated) on a route with methods [introspection]: served by the introspection cache after the first call to the in-harness authorization server."},
		{Name: "jwt-revocation", Kind: kindWarm, server: "gatehouse-revocation", path: "/jwt/x", header: "Authorization", reportOnly: true,
			credential: warmRS256, prepare: b.loadRevocations, check: b.checkRevocation,
			Description: fmt.Sprintf("jwt-rs256-warm on a Gatehouse with the revocation list on, holding %d entries: the revocation check on the hot path.", revokedEntries)},
	}
}

// checkMTLS proves the route needs the certificate: the same request
// without one is refused, on the HTTPS listener and on the plain one.
func (b *bed) checkMTLS(ctx context.Context, s *scenario) error {
	noCert := newTLSClient(1, b.pki.clientConfig(false), true)
	for _, c := range []struct {
		name   string
		client *http.Client
		url    string
	}{
		{"HTTPS without a certificate", noCert, b.url(s)},
		{"plain HTTP", newClient(1), "http://" + b.server(s).Addr + s.path},
	} {
		status, _, err := probe(ctx, c.client, c.url, nil)
		if err != nil {
			return fmt.Errorf("%s: %w", c.name, err)
		}
		if status != http.StatusUnauthorized {
			return fmt.Errorf("%s: status %d, want 401", c.name, status)
		}
	}
	status, subject, err := probe(ctx, b.client(s, 1), b.url(s), nil)
	if err != nil {
		return err
	}
	if status != http.StatusOK || subject != benchSPIFFEID {
		return fmt.Errorf("with the certificate: status %d, subject %q; want 200 and %s", status, subject, benchSPIFFEID)
	}
	return nil
}

// dpopClientFor makes the DPoP client on first use: its proofs are for
// the URL Gatehouse's main listener sees.
func (b *bed) dpopClientFor() (*dpopClient, error) {
	if b.dpop != nil {
		return b.dpop, nil
	}
	d, err := newDPoPClient(b.issuers["dpop"], b.minted, "http://"+b.gate.Addr+"/dpop/x")
	if err != nil {
		return nil, err
	}
	b.minted++
	b.dpop = d
	return d, nil
}

// dpopProofs signs n fresh proofs for a phase.
func (b *bed) dpopProofs(n int) (headerSets, error) {
	d, err := b.dpopClientFor()
	if err != nil {
		return nil, err
	}
	sets, err := d.proofs(n)
	if err != nil {
		return nil, err
	}
	return &setPool{values: sets}, nil
}

// checkDPoP proves the proof is checked: a replayed proof, a missing one,
// or the bound token as a Bearer token are refused.
func (b *bed) checkDPoP(ctx context.Context, s *scenario) error {
	d, err := b.dpopClientFor()
	if err != nil {
		return err
	}
	sets, err := d.proofs(1)
	if err != nil {
		return err
	}
	token, proof := sets[0][0], sets[0][1]
	for _, c := range []struct {
		name string
		h    http.Header
		want int
	}{
		{"a fresh proof", http.Header{"Authorization": {token}, "Dpop": {proof}}, http.StatusOK},
		{"the same proof again", http.Header{"Authorization": {token}, "Dpop": {proof}}, http.StatusUnauthorized},
		{"no proof", http.Header{"Authorization": {token}}, http.StatusUnauthorized},
		{"the bound token as Bearer", http.Header{"Authorization": {"Bearer " + strings.TrimPrefix(token, "DPoP ")}}, http.StatusUnauthorized},
	} {
		status, _, err := probe(ctx, newClient(1), b.url(s), c.h)
		if err != nil {
			return fmt.Errorf("%s: %w", c.name, err)
		}
		if status != c.want {
			return fmt.Errorf("%s: status %d, want %d", c.name, status, c.want)
		}
	}
	return nil
}

// checkIntrospectionCached proves the measured requests are cache hits:
// after the self-check's first call, the same token again reaches the
// upstream without another introspection call. (That other tokens are
// refused, the authorization server saying inactive, the generic check
// proved with a tampered one.)
func (b *bed) checkIntrospectionCached(ctx context.Context, s *scenario) error {
	before, err := b.upstream.stats(false)
	if err != nil {
		return err
	}
	if before.Introspections == 0 {
		return fmt.Errorf("the authorization server was never called")
	}
	h := http.Header{"Authorization": {"Bearer " + b.opaque}}
	for range 3 {
		if status, _, err := probe(ctx, newClient(1), b.url(s), h); err != nil || status != http.StatusOK {
			return fmt.Errorf("again: status %d, %v; want 200", status, err)
		}
	}
	after, err := b.upstream.stats(false)
	if err != nil {
		return err
	}
	if n := after.Introspections - before.Introspections; n != 0 {
		return fmt.Errorf("the same token was introspected %d more times: not served by the cache", n)
	}
	return nil
}

// adminFor is an admin API client of a Gatehouse whose admin token is in
// dir.
func adminFor(c *child, dir string) (*adminclient.Client, error) {
	token, err := os.ReadFile(filepath.Join(dir, "admin.token"))
	if err != nil {
		return nil, err
	}
	return &adminclient.Client{BaseURL: "http://" + c.Admin, Token: strings.TrimSpace(string(token))}, nil
}

// loadRevocations revokes revokedEntries unknown jtis of the RS256 issuer
// through the revocation Gatehouse's admin API, as an operator would.
func (b *bed) loadRevocations(ctx context.Context) error {
	ac, err := adminFor(b.variants["gatehouse-revocation"], filepath.Join(b.dir, "gatehouse-revocation"))
	if err != nil {
		return err
	}
	ctx, cancel := context.WithTimeout(ctx, time.Minute)
	defer cancel()
	const batch = 500
	for done := 0; done < revokedEntries; done += batch {
		values := make([]string, min(batch, revokedEntries-done))
		for i := range values {
			var r [12]byte
			if _, err := rand.Read(r[:]); err != nil {
				return err
			}
			values[i] = "revoked-" + hex.EncodeToString(r[:])
		}
		if _, err := ac.Revoke(ctx, adminclient.NewRevocations{Kind: "jti", Issuer: b.issuers["rs256"].iss, Values: values, Reason: "bench"}); err != nil {
			return fmt.Errorf("revoking: %w", err)
		}
	}
	return nil
}

// checkRevocation proves the list is consulted: a token that works stops
// working once its jti is revoked.
func (b *bed) checkRevocation(ctx context.Context, s *scenario) error {
	seq := b.minted
	toks, err := b.mint("rs256", 1)
	if err != nil {
		return err
	}
	h := http.Header{"Authorization": {"Bearer " + toks[0]}}
	if status, _, err := probe(ctx, newClient(1), b.url(s), h); err != nil || status != http.StatusOK {
		return fmt.Errorf("before revocation: status %d, %v; want 200", status, err)
	}
	ac, err := adminFor(b.server(s), filepath.Join(b.dir, s.server))
	if err != nil {
		return err
	}
	jti := fmt.Sprintf("rs256-%d", seq)
	if _, err := ac.Revoke(ctx, adminclient.NewRevocations{Kind: "jti", Issuer: b.issuers["rs256"].iss, Values: []string{jti}, Reason: "bench self-check"}); err != nil {
		return err
	}
	status, _, err := probe(ctx, newClient(1), b.url(s), h)
	if err != nil {
		return err
	}
	if status != http.StatusUnauthorized {
		return fmt.Errorf("a revoked token: status %d, want 401", status)
	}
	return nil
}
