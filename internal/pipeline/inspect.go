package pipeline

import (
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"time"

	"github.com/gatehouse/gatehouse/internal/accesslog"
	"github.com/gatehouse/gatehouse/internal/authn"
	"github.com/gatehouse/gatehouse/internal/identity"
)

// Outcome is what the pipeline would decide for one request, without
// reaching the upstream: the answer of `gatehouse policy test` and
// `gatehouse explain`.
type Outcome struct {
	// Status is the response status; 200 means the request would have been
	// forwarded to the upstream.
	Status int
	// Route is the matched route's name ("" for 400, 404 and 405).
	Route string
	// Reason is the stable code of a refusal: the authentication or
	// authorization reason, or the problem type slug; "ok" when allowed.
	Reason string
	// Rule is the policy rule that denied, for 403.
	Rule string
	// Steps describe each decision in order, one line each; filled only
	// when explaining.
	Steps []string
	// NotEvaluated, when set, says which credential method could not be
	// evaluated offline and why (its store could not be opened): the
	// outcome is not what the gateway would answer, and tools must say so
	// and fail. Reason is then "not_evaluated".
	NotEvaluated string
}

// Inspect runs request id, route match and the route's stages for r, as
// ServeHTTP does, but stops before the body limit and the proxy: nothing
// is sent upstream. With id set, authentication is skipped and id is the
// caller the later stages see (a policy test of a known identity). With
// explain, Steps lists the route chosen, each authenticator tried and every
// policy rule evaluated. Audit events are written as for a real request.
func (p *Plan) Inspect(r *http.Request, id *identity.Identity, explain bool) Outcome {
	var out Outcome
	step := func(format string, args ...any) {
		if explain {
			out.Steps = append(out.Steps, fmt.Sprintf(format, args...))
		}
	}
	rec := &recorder{ResponseWriter: httptest.NewRecorder()}
	e := &accesslog.Entry{Start: time.Now(), Method: r.Method, Host: r.Host, Path: r.URL.Path, ClientIP: p.resolver.ClientIP(r)}
	fail := func(err error) Outcome {
		if method, why, ok := notEvaluatedCause(err); ok {
			out.Status, out.Reason, out.NotEvaluated = 0, "not_evaluated", (&NotEvaluatedError{Method: method, Why: why}).Error()
			step("result: NOT EVALUATED: %s cannot be evaluated offline (%s); the gateway's answer is unknown", method, why)
			return out
		}
		p.respond(rec, r, e, err)
		out.Status, out.Reason = rec.status, refusalReason(err, e.Error)
		var fe *ForbiddenError
		if errors.As(err, &fe) {
			out.Rule = fe.Decision.Rule
		}
		step("result: %d %s", out.Status, out.Reason)
		return out
	}

	e.RequestID = r.Header.Get("X-Request-Id")
	stripIdentityHeaders(r.Header, p.stripHeaders)
	res, err := p.route(r, p.peerTrusted(r))
	var reqErr *RequestError
	switch {
	case errors.Is(err, errBadPath):
		step("path %q is not absolute or has dot segments", r.URL.Path)
		return fail(err)
	case errors.As(err, &reqErr):
		step("request hygiene: refused: %s", reqErr.Type.Slug)
		return fail(err)
	case errors.Is(err, errRouteNotFound):
		step("route: none matches host %q, path %q", r.Host, r.URL.Path)
		return fail(err)
	case err != nil:
		var mna *MethodNotAllowedError
		if errors.As(err, &mna) {
			step("route: host and path match, but not method %s (allow: %s)", r.Method, mna.Allow)
		}
		return fail(err)
	}
	rt := res.Value
	out.Route, e.Route = rt.Name, rt.Name
	step("route: %s", rt.Name)
	if rt.serve != nil && rt.cors != nil && len(rt.Stages) == 0 {
		// A CORS preflight (cors.go): no stage runs.
		out.Status, out.Reason = http.StatusNoContent, "ok"
		step("cors preflight: answered by the gateway (204), without authentication, never forwarded")
		return out
	}
	x := &Exchange{Request: r, Route: rt, Params: res.Params, ClientIP: e.ClientIP, Log: e}
	authenticated := false
	for _, s := range rt.Stages {
		switch st := s.(type) {
		case *authenticateStage:
			authenticated = true
			if id != nil {
				x.Identity = id
				step("authenticate: skipped; given identity %s (method %s)", describe(id), methodList(id))
				for _, c := range id.Credentials {
					step("authenticate: given credential %s", describeCredential(c))
				}
				continue
			}
			if explain {
				p.explainChain(st.chain, r, step)
			}
		case *authorizeStage:
			if explain {
				d := st.policy.Explain(authzInput(x, st.now()))
				for _, t := range d.Trace {
					mark := "pass"
					if !t.Passed {
						mark = "FAIL"
					}
					step("authorize: policy %s: %s: %s (%s)", st.policy.Name(), t.Rule, mark, t.Detail)
				}
			}
		}
		if err := s.Process(x); err != nil {
			return fail(err)
		}
		if _, ok := s.(*authenticateStage); ok {
			step("authenticate: caller %s", describe(x.Identity))
			if x.Identity.Composite() {
				for _, c := range x.Identity.Credentials {
					step("authenticate: credential %s", describeCredential(c))
				}
			}
		}
	}
	out.Status, out.Reason = http.StatusOK, "ok"
	if !authenticated {
		step("public route: no authentication")
	}
	if rt.serve != nil {
		// direct_response, a metadata document, a method's endpoint (endpoint.go).
		step("result: allowed, answered by the gateway itself (never forwarded)")
		return out
	}
	step("result: 200, forwarded to the upstream")
	return out
}

// explainChain tries each authenticator of a chain as Chain.Authenticate
// does, reporting each outcome. It only explains: the authenticate stage
// itself decides.
func (p *Plan) explainChain(c *authn.Chain, r *http.Request, step func(string, ...any)) {
	mode := "any of"
	if c.RequireAll {
		mode = "all of"
	}
	step("authenticate: %s %d method(s), anonymous allowed: %t", mode, len(c.Authenticators), c.AllowAnonymous)
	for _, a := range c.Authenticators {
		got, err := a.Authenticate(r.Clone(r.Context()))
		var (
			fail  *authn.Failure
			unavl *authn.UnavailableError
		)
		_, why, notEvaluated := notEvaluatedCause(err)
		switch {
		case notEvaluated:
			step("authenticate: %s: NOT EVALUATED: %s", a.Method(), why)
			return
		case err == nil && got != nil:
			step("authenticate: %s: ok, %s", a.Method(), describe(got))
			if !c.RequireAll {
				return
			}
		case errors.Is(err, authn.ErrNoCredential):
			step("authenticate: %s: no credential of this kind", a.Method())
			if c.RequireAll {
				return
			}
		case errors.As(err, &fail):
			step("authenticate: %s: failed: %s", a.Method(), fail.Reason)
			return
		case errors.As(err, &unavl):
			step("authenticate: %s: unavailable: %s", a.Method(), unavl.Reason)
			return
		default:
			step("authenticate: %s: error", a.Method())
			return
		}
	}
}

// refusalReason is the stable code of a refusal.
func refusalReason(err error, slug string) string {
	var (
		fe    *ForbiddenError
		ce    *challengeError
		unavl *authn.UnavailableError
	)
	switch {
	case errors.As(err, &fe):
		return string(fe.Decision.Reason)
	case errors.As(err, &ce):
		return string(ce.failure.Reason)
	case errors.As(err, &unavl):
		return string(unavl.Reason)
	}
	return slug
}

// describeCredential is one credential of a composite identity, for
// explain: identifiers only.
func describeCredential(c identity.Credential) string {
	s := fmt.Sprintf("%s subject=%q", c.Method, c.Subject)
	if c.Provider != "" {
		s += fmt.Sprintf(" provider=%q", c.Provider)
	}
	if c.CredentialID != "" {
		s += fmt.Sprintf(" id=%q", c.CredentialID)
	}
	if !c.ExpiresAt.IsZero() {
		s += " expires=" + c.ExpiresAt.UTC().Format(time.RFC3339)
	}
	if c.CertThumbprint != "" {
		s += " x5t#S256=" + c.CertThumbprint
	}
	if c.KeyBinding.Kind != "" {
		s += " cnf." + c.KeyBinding.Kind + "=" + c.KeyBinding.Value
	}
	return s
}

func describe(id *identity.Identity) string {
	if id.IsAnonymous() {
		return "anonymous"
	}
	s := fmt.Sprintf("subject=%q", id.Subject)
	if id.Provider != "" {
		s += fmt.Sprintf(" provider=%q", id.Provider)
	}
	if len(id.Scopes) > 0 {
		s += " scopes=[" + strings.Join(id.Scopes, " ") + "]"
	}
	if len(id.Roles) > 0 {
		s += " roles=[" + strings.Join(id.Roles, ",") + "]"
	}
	if len(id.Groups) > 0 {
		s += " groups=[" + strings.Join(id.Groups, ",") + "]"
	}
	return s
}
