package pipeline

import (
	"encoding/json"
	"errors"
	"net/http"
	"strings"

	"github.com/gatehouse/gatehouse/internal/audit"
	"github.com/gatehouse/gatehouse/internal/authn"
	"github.com/gatehouse/gatehouse/internal/clientcert"
	"github.com/gatehouse/gatehouse/internal/identity"
	"github.com/gatehouse/gatehouse/internal/revocation"
)

// authenticateStage runs a route's authentication chain and records the
// decision as one audit event, whatever the outcome.
type authenticateStage struct {
	chain *authn.Chain
	// schemes are the WWW-Authenticate schemes of chain.Authenticators,
	// in order, taken from the registry when the route was built.
	schemes []string
	// schemeParams[i] are the auth-params every challenge of schemes[i]
	// carries after its realm (registry.Method.ChallengeParams); nil when
	// no method of the route has any.
	schemeParams []string
	// lockoutKeyers are the authenticators whose credential id brute-force
	// protection checks before the chain (authn.LockoutKeyer).
	lockoutKeyers []authn.LockoutKeyer
	// challengers[i] is chain.Authenticators[i] as an authn.Challenger,
	// nil when it is not one; the slice is nil when none is.
	challengers []authn.Challenger
	// advisors are the authenticators that add response headers to an
	// accepted request (authn.ResponseAdvisor).
	advisors []authn.ResponseAdvisor
	audit    audit.Logger
	realm    string
	// headers are the route's identity headers: an identity that they
	// cannot carry unambiguously is refused here (see representable).
	headers *identityHeaders
	// revoked is the revocation list (revocation.go), checked after the
	// chain whatever method authenticated; nil: revocation is off.
	revoked *revocation.List
	// bf is the brute-force protection (bruteforce.go); nil: off.
	bf *bruteForce
}

// reasonUnrepresentable: the credential is valid, but a value that an
// identity header of the route must carry cannot be sent unambiguously.
const reasonUnrepresentable authn.Reason = "identity_unrepresentable"

func (s *authenticateStage) Name() string { return "authenticate" }

func (s *authenticateStage) Process(x *Exchange) error {
	if s.bf != nil {
		// Before any credential is looked at: a locked-out address
		// costs a counter lookup, not a store query or a signature.
		if err := s.bf.beforeChain(x); err != nil {
			return s.lockedOut(x, err)
		}
		for _, k := range s.lockoutKeyers {
			if err := s.bf.beforeVerify(x, k); err != nil {
				return s.lockedOut(x, err)
			}
		}
	}
	id, err := s.chain.Authenticate(x.Request)
	ev := x.auditEvent(audit.TypeAuthentication)
	if err == nil && s.headers != nil && !id.IsAnonymous() && !s.headers.representable(id) {
		err = &authn.Failure{Method: id.Method, Reason: reasonUnrepresentable,
			Description: "The credential's identity cannot be passed on unambiguously.",
			Issuer:      id.Issuer, Provider: id.Provider, CredentialID: id.CredentialID}
	}
	if err == nil && s.revoked != nil {
		err = checkRevoked(s.revoked, id)
	}
	if err == nil && s.bf != nil {
		if lerr := s.bf.afterSuccess(x, id); lerr != nil {
			return s.lockedOut(x, lerr)
		}
	}
	if err == nil {
		ev.Outcome, ev.Reason = audit.OutcomeAllow, string(authn.ReasonOK)
		if id.IsAnonymous() {
			ev.Reason = string(authn.ReasonAnonymous)
		}
		ev.AuthMethod, ev.Subject, ev.Issuer, ev.Provider = string(id.Method), id.Subject, id.Issuer, id.Provider
		ev.ClientID, ev.CredentialID = id.ClientID, id.CredentialID
		if id.Credentials != nil {
			ev.Credentials = auditCredentials(id.Credentials)
		}
		x.Identity = id
		x.Log.Subject, x.Log.AuthMethod = id.Subject, string(id.Method)
		for _, ad := range s.advisors {
			ad.Advise(x.Request, id, x)
		}
		s.audit.Log(ev)
		observeAuthentication(x, ev)
		return nil
	}
	err = s.refusal(ev, err)
	s.audit.Log(ev)
	observeAuthentication(x, ev)
	if s.bf != nil {
		var fail *authn.Failure
		if errors.As(err, &fail) {
			s.bf.failed(x, fail, s.audit)
		}
	}
	return err
}

// lockedOut records the refusal of a locked-out request (one
// authn.decision, reason locked_out, saying nothing of the credential)
// and returns the 429.
func (s *authenticateStage) lockedOut(x *Exchange, err error) error {
	ev := x.auditEvent(audit.TypeAuthentication)
	ev.Outcome, ev.Reason = audit.OutcomeDeny, string(reasonLockedOut)
	s.audit.Log(ev)
	observeAuthentication(x, ev)
	return err
}

// observeAuthentication tells the route's observer the decision recorded
// in ev (never who the caller is).
func observeAuthentication(x *Exchange, ev *audit.Event) {
	if o := x.Route.observer; o != nil {
		o.Authentication(Authentication{Method: ev.AuthMethod, Outcome: ev.Outcome, Reason: ev.Reason, Provider: ev.Provider})
	}
}

// refusal records a failed authentication in ev and returns the error
// respond maps to the answer. It is apart from Process so that the
// errors.As targets are only allocated for a refused request.
func (s *authenticateStage) refusal(ev *audit.Event, err error) error {
	var (
		fail  *authn.Failure
		unavl *authn.UnavailableError
	)
	switch {
	case errors.As(err, &fail):
		ev.Outcome, ev.Reason, ev.AuthMethod = audit.OutcomeDeny, string(fail.Reason), string(fail.Method)
		ev.Subject, ev.Issuer, ev.Provider, ev.CredentialID = fail.Subject, fail.Issuer, fail.Provider, fail.CredentialID
		return &challengeError{failure: fail, cause: err, realm: s.realm, methods: s.methods(), schemes: s.schemes, schemeParams: s.schemeParams, challengers: s.challengers}
	case errors.As(err, &unavl):
		ev.Outcome, ev.Reason, ev.AuthMethod, ev.Provider = audit.OutcomeError, string(unavl.Reason), string(unavl.Method), unavl.Provider
	default:
		ev.Outcome, ev.Reason = audit.OutcomeError, "internal_error"
	}
	return err
}

// challengeError carries a failed authentication and the realm to name in
// the WWW-Authenticate challenge.
type challengeError struct {
	failure *authn.Failure
	// cause is the chain's error (failure, or what wraps it).
	cause   error
	realm   string
	methods []identity.Method
	// schemes[i] is the challenge scheme of methods[i]; challengers[i]
	// (nil, or nil for a method that is not one) builds its challenges
	// itself (authn.Challenger).
	schemes      []string
	schemeParams []string
	challengers  []authn.Challenger
	// resourceMetadata, when set, is the route's RFC 9728 metadata URL,
	// added to Bearer challenges (metadata.go; set by respond).
	resourceMetadata string
}

// bearerParams writes the parameters every Bearer challenge of e carries
// after its realm: resource_metadata (RFC 9728 §5.1), if any.
func (e *challengeError) bearerParams(b *strings.Builder) {
	if e.resourceMetadata != "" {
		b.WriteString(`, resource_metadata="` + quoteSafe(e.resourceMetadata) + `"`)
	}
}

func (s *authenticateStage) methods() []identity.Method {
	out := make([]identity.Method, len(s.chain.Authenticators))
	for i, a := range s.chain.Authenticators {
		out[i] = a.Method()
	}
	return out
}

func (e *challengeError) Error() string { return e.failure.Error() }
func (e *challengeError) Unwrap() error { return e.failure }

// wwwAuthenticate builds the RFC 6750 §3 challenge for a refusal of r,
// and the response headers that go with it (a DPoP-Nonce). A request that
// carried no credential gets no error code (§3.1); a bad one gets
// invalid_token and a description meant for an honest client.
//
// With no credential at all, every accepted scheme is offered (one
// challenge per scheme, RFC 9110 §11.6.1), with the extra challenges of
// the methods that have some (authn.Challenger: DPoP beside Bearer);
// otherwise the failing method's, or the one that method builds for its
// failure.
func (e *challengeError) wwwAuthenticate(r *http.Request) (string, [][2]string) {
	var b strings.Builder
	if e.failure.IsMissing() {
		seen := map[string]bool{}
		offer := func(scheme, params string) {
			if seen[scheme] {
				return
			}
			seen[scheme] = true
			if b.Len() > 0 {
				b.WriteString(", ")
			}
			b.WriteString(scheme + ` realm="` + e.realm + `"`)
			if scheme == "Bearer" {
				e.bearerParams(&b)
			}
			if params != "" {
				b.WriteString(", " + params)
			}
		}
		for i, scheme := range e.schemes {
			offer(scheme, e.params(i))
			if i < len(e.challengers) && e.challengers[i] != nil {
				for _, c := range e.challengers[i].ExtraChallenges() {
					offer(c.Scheme, c.Params)
				}
			}
		}
		if b.Len() == 0 {
			b.WriteString(`Bearer realm="` + e.realm + `"`)
			e.bearerParams(&b)
		}
		return b.String(), nil
	}
	if ch := e.challenger(e.failure.Method); ch != nil {
		if c, ok := ch.FailureChallenge(r, e.cause); ok {
			b.WriteString(c.Scheme + ` realm="` + e.realm + `"`)
			if c.Params != "" {
				b.WriteString(", " + c.Params)
			}
			return b.String(), c.Headers
		}
	}
	scheme, params := e.scheme(e.failure.Method)
	b.WriteString(scheme + ` realm="` + e.realm + `"`)
	if params != "" {
		b.WriteString(", " + params)
	}
	if scheme == "Bearer" {
		e.bearerParams(&b)
		b.WriteString(`, error="invalid_token", error_description="`)
		b.WriteString(quoteSafe(e.failure.Description))
		b.WriteByte('"')
	}
	return b.String(), nil
}

// challenger is the authn.Challenger of method m of the chain, or nil.
func (e *challengeError) challenger(m identity.Method) authn.Challenger {
	for i, cm := range e.methods {
		if cm == m && i < len(e.challengers) {
			return e.challengers[i]
		}
	}
	return nil
}

// scheme is the challenge scheme of method m of the chain and its
// auth-params; "Bearer" for a method the chain does not hold (never
// expected).
func (e *challengeError) scheme(m identity.Method) (string, string) {
	for i, cm := range e.methods {
		if cm == m && i < len(e.schemes) {
			return e.schemes[i], e.params(i)
		}
	}
	return "Bearer", ""
}

// params are the auth-params of schemes[i].
func (e *challengeError) params(i int) string {
	if i < len(e.schemeParams) {
		return e.schemeParams[i]
	}
	return ""
}

// quoteSafe keeps a description inside a quoted-string: RFC 6750 limits
// error_description to printable ASCII without '"' and '\'.
func quoteSafe(s string) string {
	return strings.Map(func(r rune) rune {
		if r < 0x20 || r > 0x7e || r == '"' || r == '\\' {
			return -1
		}
		return r
	}, s)
}

// identityHeaders is the compiled identity_headers of a route.
type identityHeaders struct {
	subject, issuer, method, clientID, scopes, roles, groups string
	// credentials carries every credential's evidence (credentials.go).
	credentials string
	// clientCertificate carries the client certificate that authenticated
	// the request (mtls), in XFCC form.
	clientCertificate    string
	claims               []claimHeader
	forwardAuthorization bool
	// credentialHeaders (the API-key header) and credentialQuery (a
	// route's API-key query parameter) are removed with Authorization.
	credentialHeaders []string
	credentialQuery   string
}

type claimHeader struct{ claim, header string }

// identityHeadersStage writes the caller's identity into upstream request
// headers (through Exchange.SetUpstreamHeader, so they are set on the
// outgoing request). It runs after authentication; every client-sent header
// with any configured identity name was already removed when the request
// arrived, so a header left unset (no groups, say) reaches the upstream
// absent, never as the client's copy.
type identityHeadersStage struct{ h identityHeaders }

func (s *identityHeadersStage) Name() string { return "identity_headers" }

func (s *identityHeadersStage) Process(x *Exchange) error {
	h := x.Request.Header
	if !s.h.forwardAuthorization {
		// The backend hears who the caller is from the identity headers; it
		// does not need the credential itself. (The names are canonical,
		// as Header.Del would make them.)
		delete(h, "Authorization")
		for _, name := range s.h.credentialHeaders {
			delete(h, name)
		}
		if q := s.h.credentialQuery; q != "" {
			u := x.Request.URL
			if vals := u.Query(); vals.Has(q) {
				vals.Del(q)
				u.RawQuery = vals.Encode()
			}
		}
	}
	id := x.Identity
	if id == nil {
		return nil
	}
	// Set on the outgoing request by the proxy, after hop-by-hop removal:
	// a client's "Connection: X-Auth-Subject" must not delete them.
	set := func(name, value string) {
		if name != "" && value != "" && headerValueSafe(value) {
			x.SetUpstreamHeader(name, value)
		}
	}
	set(s.h.method, methodList(id))
	if id.IsAnonymous() {
		return nil
	}
	if s.h.credentials != "" {
		set(s.h.credentials, encodeCredentials(id.Evidence()))
	}
	set(s.h.subject, id.Subject)
	set(s.h.issuer, id.Issuer)
	set(s.h.clientID, id.ClientID)
	set(s.h.scopes, joinList(id.Scopes, ' '))
	set(s.h.roles, joinList(id.Roles, ','))
	set(s.h.groups, joinList(id.Groups, ','))
	for _, c := range s.h.claims {
		set(c.header, claimString(id.Claims[c.claim]))
	}
	if s.h.clientCertificate != "" {
		set(s.h.clientCertificate, authenticatingCertificate(x.Request, id))
	}
	return nil
}

// authenticatingCertificate is the request's verified client certificate
// (a handshake's, or one forwarded by a trusted proxy) in XFCC form, if it
// authenticated the request through the mtls method; "" otherwise (a
// route that did not ask for the certificate does not pass it on).
func authenticatingCertificate(r *http.Request, id *identity.Identity) string {
	res := clientcert.FromContext(r.Context())
	if !res.Verified() {
		return ""
	}
	used := id.Method == identity.MethodMTLS && id.CertThumbprint == res.Thumbprint
	for _, c := range id.Credentials {
		used = used || c.Method == identity.MethodMTLS && c.CertThumbprint == res.Thumbprint
	}
	if !used {
		return ""
	}
	return res.XFCC()
}

// representable reports whether every identity header of the route can
// carry id's value unambiguously. Before, a value the transport could not
// send was dropped and its header left unset: a group with a line break
// made the whole X-Auth-Groups disappear, and a backend's deny-list of a
// "suspended" group with it. Now a single value that HTTP would change is
// refused (401): a control character anywhere, or a space at either end
// (removed in transit: " admin" would arrive as "admin"). List elements
// are escaped by joinList instead (a separator, '%', a control character
// or an outer space inside an element), so only an empty element, which
// no escaping can show, refuses a list.
func (h *identityHeaders) representable(id *identity.Identity) bool {
	if h.subject != "" && !singleValueSafe(id.Subject) ||
		h.issuer != "" && !singleValueSafe(id.Issuer) ||
		h.clientID != "" && !singleValueSafe(id.ClientID) ||
		h.scopes != "" && !listSafe(id.Scopes, ' ') ||
		h.roles != "" && !listSafe(id.Roles, ',') ||
		h.groups != "" && !listSafe(id.Groups, ',') ||
		h.credentials != "" && !credentialsSafe(id.Evidence()) {
		return false
	}
	for _, c := range h.claims {
		if !claimSafe(id.Claims[c.claim]) {
			return false
		}
	}
	return true
}

// singleValueSafe: no control character and no space at either end
// (an empty value is not sent at all).
func singleValueSafe(v string) bool {
	if v == "" {
		return true
	}
	if v[0] == ' ' || v[len(v)-1] == ' ' {
		return false
	}
	for i := 0; i < len(v); i++ {
		if c := v[i]; c < 0x20 || c == 0x7f {
			return false
		}
	}
	return true
}

// listSafe: no element is empty (joinList escapes everything else).
func listSafe(vs []string, _ byte) bool {
	for _, v := range vs {
		if v == "" {
			return false
		}
	}
	return true
}

// claimSafe checks a claim as claimString renders it: an array's
// elements are joined (and escaped) by joinList, so none may be empty.
func claimSafe(v any) bool {
	switch t := v.(type) {
	case []string:
		return listSafe(t, ',')
	case []any:
		for _, e := range t {
			if claimString(e) == "" {
				return false
			}
		}
		return true
	default:
		return singleValueSafe(claimString(v))
	}
}

// claimString renders a claim for a header: arrays comma-separated (as
// joinList escapes them).
func claimString(v any) string {
	switch t := v.(type) {
	case nil:
		return ""
	case string:
		return t
	case []string:
		return joinList(t, ',')
	case []any:
		parts := make([]string, 0, len(t))
		for _, e := range t {
			parts = append(parts, claimString(e))
		}
		return joinList(parts, ',')
	default:
		// Numbers, booleans and objects as compact JSON.
		b, err := json.Marshal(t)
		if err != nil {
			return ""
		}
		return string(b)
	}
}

// joinList joins the elements of a list-valued identity header with sep,
// percent-encoding (RFC 3986 style) any sep, '%', control character or
// outer space inside an element, so that a backend splitting on sep always gets whole
// elements: a group named "staff,admin" must reach it as one group
// ("staff%2Cadmin"), never as "staff" and "admin", and one element with a
// control character must not make the whole header disappear (a backend's
// deny list of groups would then see no groups at all). Lists without such
// characters, nearly all of them, are joined as they are.
func joinList(list []string, sep byte) string {
	escape := false
	for _, e := range list {
		if needsListEscape(e, sep) {
			escape = true
			break
		}
	}
	if !escape {
		return strings.Join(list, string(sep))
	}
	const hex = "0123456789ABCDEF"
	var b strings.Builder
	for i, e := range list {
		if i > 0 {
			b.WriteByte(sep)
		}
		for j := 0; j < len(e); j++ {
			if c := e[j]; listEscaped(c, j, len(e), sep) {
				b.WriteByte('%')
				b.WriteByte(hex[c>>4])
				b.WriteByte(hex[c&0xf])
			} else {
				b.WriteByte(c)
			}
		}
	}
	return b.String()
}

func needsListEscape(e string, sep byte) bool {
	for i := 0; i < len(e); i++ {
		if listEscaped(e[i], i, len(e), sep) {
			return true
		}
	}
	return false
}

// listEscaped reports whether byte c at position i of an n-byte list
// element is percent-encoded: the separator, '%', a control character, or
// a space at either end (a backend trims those after splitting).
func listEscaped(c byte, i, n int, sep byte) bool {
	return c == sep || c == '%' || c < 0x20 || c == 0x7f || c == ' ' && (i == 0 || i == n-1)
}

// headerValueSafe refuses control characters, which would be rejected by
// the transport or could split headers in a careless upstream.
func headerValueSafe(v string) bool {
	for i := 0; i < len(v); i++ {
		if c := v[i]; (c < 0x20 && c != '\t') || c == 0x7f {
			return false
		}
	}
	return true
}

// stripIdentityCopies removes client-sent copies of every identity header
// name from r's headers and from the trailers it declared: a trailer is a
// header too for a backend that merges them.
func stripIdentityCopies(r *http.Request, names []string) {
	stripIdentityHeaders(r.Header, names)
	if len(r.Trailer) > 0 {
		stripIdentityHeaders(r.Trailer, names)
	}
}

// stripIdentityHeaders removes client-sent copies of every identity header
// name configured anywhere, on every request, authenticated or not.
//
// Names spelled with underscores (X_Auth_Subject) are removed too: many
// backends (CGI, WSGI, some nginx setups) treat '_' and '-' alike, so such
// a header would otherwise arrive as a spoofed identity.
func stripIdentityHeaders(h http.Header, names []string) {
	for _, n := range names {
		delete(h, n)
	}
	for k := range h {
		if strings.IndexByte(k, '_') < 0 {
			continue
		}
		for _, n := range names {
			if sameHeaderLoose(k, n) {
				delete(h, k)
				break
			}
		}
	}
}

// sameHeaderLoose compares header names case-insensitively with '_' and
// '-' treated as equal.
func sameHeaderLoose(a, b string) bool {
	if len(a) != len(b) {
		return false
	}
	for i := 0; i < len(a); i++ {
		ca, cb := lowerDash(a[i]), lowerDash(b[i])
		if ca != cb {
			return false
		}
	}
	return true
}

func lowerDash(c byte) byte {
	switch {
	case c == '_':
		return '-'
	case c >= 'A' && c <= 'Z':
		return c + 'a' - 'A'
	}
	return c
}
