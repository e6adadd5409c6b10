package clientcert

import (
	"crypto/x509"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/spiffe/go-spiffe/v2/spiffeid"

	"github.com/gatehouse/gatehouse/internal/authn"
)

// Claim names under which a verified certificate's fields appear in
// identity.Identity.Claims, for policies (claims checks and CEL:
// identity.claims["cert.spiffe_id"]) and identity headers. Lists are
// []string; absent fields are absent keys. docs/mtls.md lists them.
const (
	ClaimSubjectDN          = "cert.subject_dn"
	ClaimCommonName         = "cert.common_name"
	ClaimOrganization       = "cert.organization"
	ClaimOrganizationalUnit = "cert.organizational_unit"
	ClaimSPIFFEID           = "cert.spiffe_id"
	ClaimTrustDomain        = "cert.trust_domain"
	ClaimDNSSANs            = "cert.dns_sans"
	ClaimEmailSANs          = "cert.email_sans"
	ClaimURISANs            = "cert.uri_sans"
	ClaimSerial             = "cert.serial"
	ClaimIssuerDN           = "cert.issuer_dn"
	ClaimNotAfter           = "cert.not_after"
	ClaimThumbprint         = "cert.x5t_s256"
)

// Facts are what a verified certificate says, derived once per connection.
type Facts struct {
	// SPIFFEID is the certificate's SPIFFE ID (its one spiffe:// URI SAN),
	// zero if it has none.
	SPIFFEID spiffeid.ID
	// SPIFFEErr is set when the certificate has spiffe:// URI SANs that
	// are not exactly one well-formed SPIFFE ID (X509-SVID §2): such a
	// certificate is refused by every mtls route.
	SPIFFEErr error
	// IssuerDN is the issuer's distinguished name (RFC 2253 form).
	IssuerDN string
	// Claims are the identity claims (the Claim… names). Shared by every
	// request of the connection: read only.
	Claims map[string]any
}

// Facts derives the facts of a verified result (nil if not verified).
func (r *Result) Facts() *Facts {
	if !r.Verified() {
		return nil
	}
	r.factsOnce.Do(func() { r.facts = factsOf(r.Chain[0], r.Thumbprint) })
	return r.facts
}

func factsOf(c *x509.Certificate, thumbprint string) *Facts {
	issuer := c.Issuer.String()
	f := &Facts{IssuerDN: issuer, Claims: map[string]any{
		ClaimSubjectDN:  c.Subject.String(),
		ClaimIssuerDN:   issuer,
		ClaimSerial:     fmt.Sprintf("%x", c.SerialNumber),
		ClaimNotAfter:   c.NotAfter.UTC().Format(time.RFC3339),
		ClaimThumbprint: thumbprint,
	}}
	put := func(k string, v []string) {
		if len(v) > 0 {
			f.Claims[k] = v
		}
	}
	if c.Subject.CommonName != "" {
		f.Claims[ClaimCommonName] = c.Subject.CommonName
	}
	put(ClaimOrganization, c.Subject.Organization)
	put(ClaimOrganizationalUnit, c.Subject.OrganizationalUnit)
	put(ClaimDNSSANs, c.DNSNames)
	put(ClaimEmailSANs, c.EmailAddresses)
	uris := make([]string, 0, len(c.URIs))
	var spiffe []string
	for _, u := range c.URIs {
		s := u.String()
		uris = append(uris, s)
		if strings.EqualFold(u.Scheme, "spiffe") {
			spiffe = append(spiffe, s)
		}
	}
	put(ClaimURISANs, uris)
	switch len(spiffe) {
	case 0:
	case 1:
		id, err := spiffeid.FromString(spiffe[0])
		if err != nil {
			f.SPIFFEErr = fmt.Errorf("clientcert: URI SAN %q is not a valid SPIFFE ID: %w", spiffe[0], err)
			break
		}
		f.SPIFFEID = id
		f.Claims[ClaimSPIFFEID] = id.String()
		f.Claims[ClaimTrustDomain] = id.TrustDomain().Name()
	default:
		f.SPIFFEErr = fmt.Errorf("clientcert: %d SPIFFE URI SANs; an X509-SVID has exactly one", len(spiffe))
	}
	return f
}

// Subject sources, tried in the order configured.
const (
	SourceSPIFFEID   = "spiffe_id"
	SourceDNSSAN     = "dns_san"
	SourceEmailSAN   = "email_san"
	SourceCommonName = "common_name"
)

// Sources are the accepted subject sources.
var Sources = []string{SourceSPIFFEID, SourceDNSSAN, SourceEmailSAN, SourceCommonName}

// DefaultSubjectFrom is the subject order when none is configured.
var DefaultSubjectFrom = []string{SourceSPIFFEID, SourceDNSSAN, SourceEmailSAN, SourceCommonName}

// MappingConfig is a route's certificate → identity mapping and its
// allow-lists (see internal/authn/mtls.Config for the documented keys).
type MappingConfig struct {
	SubjectFrom  []string
	TrustDomains []string
	Subjects     []string
	SPIFFEIDs    []string
}

// Mapping is a compiled MappingConfig.
type Mapping struct {
	from         []string
	trustDomains map[spiffeid.TrustDomain]struct{}
	subjects     map[string]struct{}
	spiffeExact  map[spiffeid.ID]struct{}
	spiffePrefix []spiffePrefix
	allowList    bool
}

type spiffePrefix struct {
	td   spiffeid.TrustDomain
	path string // "" for the whole trust domain, else "/a/b" (matches /a/b/…)
}

// FieldError is a problem of a MappingConfig, at a path relative to it
// ("spiffe_ids[2]").
type FieldError struct {
	Path, Msg string
}

func (e *FieldError) Error() string { return e.Path + ": " + e.Msg }

// CompileMapping checks and compiles c. Every problem is returned, as
// *FieldError values.
func CompileMapping(c MappingConfig) (*Mapping, []error) {
	var errs []error
	add := func(path, format string, a ...any) {
		errs = append(errs, &FieldError{Path: path, Msg: fmt.Sprintf(format, a...)})
	}
	m := &Mapping{
		from:         c.SubjectFrom,
		trustDomains: map[spiffeid.TrustDomain]struct{}{},
		subjects:     map[string]struct{}{},
		spiffeExact:  map[spiffeid.ID]struct{}{},
	}
	if len(m.from) == 0 {
		m.from = DefaultSubjectFrom
	}
	seen := map[string]bool{}
	for i, s := range c.SubjectFrom {
		switch {
		case !containsString(Sources, s):
			add(fmt.Sprintf("subject_from[%d]", i), "unknown subject source %q (want one of %s)", s, strings.Join(Sources, ", "))
		case seen[s]:
			add(fmt.Sprintf("subject_from[%d]", i), "%q is listed twice", s)
		}
		seen[s] = true
	}
	for i, s := range c.TrustDomains {
		td, err := spiffeid.TrustDomainFromString(s)
		if err != nil || strings.Contains(s, "/") {
			add(fmt.Sprintf("trust_domains[%d]", i), "%q is not a SPIFFE trust domain name (e.g. partner.example)", s)
			continue
		}
		m.trustDomains[td] = struct{}{}
	}
	for i, s := range c.Subjects {
		if s == "" {
			add(fmt.Sprintf("subjects[%d]", i), "empty subject")
			continue
		}
		m.subjects[s] = struct{}{}
	}
	for i, s := range c.SPIFFEIDs {
		p := fmt.Sprintf("spiffe_ids[%d]", i)
		base, prefix := strings.CutSuffix(s, "/*")
		id, err := spiffeid.FromString(base)
		if err != nil {
			add(p, "%q is not a SPIFFE ID (spiffe://trust-domain/path) or prefix (spiffe://trust-domain/path/*): %v", s, err)
			continue
		}
		if len(m.trustDomains) > 0 {
			if _, ok := m.trustDomains[id.TrustDomain()]; !ok {
				add(p, "trust domain %q is not in trust_domains: no certificate could match", id.TrustDomain().Name())
			}
		}
		if prefix {
			m.spiffePrefix = append(m.spiffePrefix, spiffePrefix{td: id.TrustDomain(), path: id.Path()})
		} else {
			if id.Path() == "" {
				add(p, "%q names a trust domain, not a workload; write %s/* to allow the whole trust domain", s, s)
				continue
			}
			m.spiffeExact[id] = struct{}{}
		}
	}
	m.allowList = len(c.Subjects) > 0 || len(c.SPIFFEIDs) > 0
	return m, errs
}

func containsString(list []string, s string) bool {
	for _, e := range list {
		if e == s {
			return true
		}
	}
	return false
}

// ErrNoSubject: none of the configured subject sources is in the
// certificate.
var ErrNoSubject = errors.New("clientcert: the certificate has none of the configured subject fields")

// Map chooses the subject of a verified certificate and applies the
// allow-lists. A refusal is ReasonNotAllowed with the internal cause.
func (m *Mapping) Map(f *Facts, leaf *x509.Certificate) (string, authn.Reason, error) {
	if f.SPIFFEErr != nil {
		return "", ReasonNotAllowed, f.SPIFFEErr
	}
	hasID := !f.SPIFFEID.IsZero()
	if hasID && len(m.trustDomains) > 0 {
		if _, ok := m.trustDomains[f.SPIFFEID.TrustDomain()]; !ok {
			return "", ReasonNotAllowed, fmt.Errorf("clientcert: trust domain %q is not accepted", f.SPIFFEID.TrustDomain().Name())
		}
	}
	subject := ""
	for _, s := range m.from {
		switch s {
		case SourceSPIFFEID:
			if hasID {
				subject = f.SPIFFEID.String()
			}
		case SourceDNSSAN:
			if len(leaf.DNSNames) > 0 {
				subject = leaf.DNSNames[0]
			}
		case SourceEmailSAN:
			if len(leaf.EmailAddresses) > 0 {
				subject = leaf.EmailAddresses[0]
			}
		case SourceCommonName:
			subject = leaf.Subject.CommonName
		}
		if subject != "" {
			break
		}
	}
	if subject == "" {
		return "", ReasonNotAllowed, ErrNoSubject
	}
	if m.allowList && !m.allowed(subject, f.SPIFFEID) {
		return subject, ReasonNotAllowed, fmt.Errorf("clientcert: %q is not on the route's allow-list", subject)
	}
	return subject, "", nil
}

func (m *Mapping) allowed(subject string, id spiffeid.ID) bool {
	if _, ok := m.subjects[subject]; ok {
		return true
	}
	if id.IsZero() {
		return false
	}
	if _, ok := m.spiffeExact[id]; ok {
		return true
	}
	for _, p := range m.spiffePrefix {
		if id.TrustDomain() == p.td && (p.path == "" || strings.HasPrefix(id.Path(), p.path+"/")) {
			return true
		}
	}
	return false
}
