package pipeline

import (
	"net/url"
	"strings"
	"time"

	"github.com/gatehouse/gatehouse/internal/audit"
	"github.com/gatehouse/gatehouse/internal/authz"
	"github.com/gatehouse/gatehouse/internal/identity"
)

// authorizeStage applies a route's compiled policy to the authenticated
// caller and records the decision, with the rule that decided, as one audit
// event. The client learns only that it is forbidden (and, for a missing
// scope, which scope would do: RFC 6750 §3.1).
type authorizeStage struct {
	policy *authz.Policy
	// reads are the headers and query parameters the policy reads, which
	// must not be ambiguous (nil: none).
	reads *policyReads
	audit audit.Logger
	realm string
	now   func() time.Time
}

func (s *authorizeStage) Name() string { return "authorize" }

func (s *authorizeStage) Process(x *Exchange) error {
	in, queryErr := authzInputErr(x, s.now())
	if s.reads.ambiguous(x.Request.Header, in.Query, queryErr) {
		// The policy would check one value and the backend might use
		// another: refused before the policy runs.
		return errAmbiguousParameter
	}
	d := s.policy.Evaluate(in)
	ev := x.auditEvent(audit.TypeAuthorization)
	ev.Reason, ev.Rule, ev.Policy = string(d.Reason), d.Rule, s.policy.Name()
	if id := x.Identity; id != nil {
		ev.AuthMethod, ev.Subject, ev.Issuer, ev.Provider, ev.ClientID, ev.CredentialID =
			string(id.Method), id.Subject, id.Issuer, id.Provider, id.ClientID, id.CredentialID
	}
	if d.Allow {
		ev.Outcome = audit.OutcomeAllow
	} else {
		ev.Outcome = audit.OutcomeDeny
	}
	s.audit.Log(ev)
	if o := x.Route.observer; o != nil {
		o.Authorization(Authorization{Outcome: ev.Outcome, Reason: ev.Reason})
	}
	if d.Allow {
		return nil
	}
	return &ForbiddenError{Decision: d, realm: s.realm, bearer: x.Identity != nil && x.Identity.Method == identity.MethodJWT}
}

// authzInput is the request as policies see it.
func authzInput(x *Exchange, now time.Time) *authz.Input {
	in, _ := authzInputErr(x, now)
	return in
}

// authzInputErr is authzInput and the error of parsing the query, if any.
func authzInputErr(x *Exchange, now time.Time) (*authz.Input, error) {
	r := x.Request
	in := &authz.Input{
		Identity: x.Identity, Method: r.Method, Host: r.Host, Path: r.URL.Path,
		Headers: r.Header, ClientIP: x.ClientIP, Now: now,
	}
	if len(x.Params) > 0 {
		in.PathParams = make(map[string]string, len(x.Params))
		for _, p := range x.Params {
			in.PathParams[p.Name] = p.Value
		}
	}
	var err error
	if r.URL.RawQuery != "" {
		in.Query, err = url.ParseQuery(r.URL.RawQuery)
	}
	return in, err
}

// ForbiddenError is an authenticated caller that the policy denies: 403.
type ForbiddenError struct {
	Decision authz.Decision
	realm    string
	bearer   bool
}

func (e *ForbiddenError) Error() string {
	return "pipeline: forbidden: " + string(e.Decision.Reason) + " at " + e.Decision.Rule
}

// wwwAuthenticate is the RFC 6750 §3.1 insufficient_scope challenge, for
// bearer-token callers missing a scope; "" otherwise.
func (e *ForbiddenError) wwwAuthenticate() string {
	if !e.bearer || e.Decision.Reason != authz.ReasonScopeMissing || len(e.Decision.MissingScopes) == 0 {
		return ""
	}
	return `Bearer realm="` + e.realm + `", error="insufficient_scope", scope="` +
		quoteSafe(strings.Join(e.Decision.MissingScopes, " ")) + `"`
}
