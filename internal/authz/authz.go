// Package authz is per-route authorization: a policy is compiled once, when
// the configuration is loaded, and evaluated for every request that passed
// authentication.
//
// # Rules and their order
//
// Evaluate checks the rules in a fixed order, and the first rule that fails
// decides (fail closed; a policy with no rules allows every authenticated
// caller):
//
//  1. anonymous: unless AllowAnonymous is set, an anonymous identity (or no
//     identity at all) is denied with reason "anonymous_denied".
//  2. groups.deny: any of the caller's groups in the list denies ("group_denied").
//  3. scopes.all_of, scopes.any_of ("scope_missing"; Decision.MissingScopes
//     lists the scopes that would satisfy the rule, for an RFC 6750
//     insufficient_scope challenge).
//  4. roles.all_of, roles.any_of ("role_missing").
//  5. groups.all_of, groups.any_of ("group_missing").
//  6. claims.<name>, in name order: the claim must equal one of the listed
//     values; for an array claim one element must ("claim_mismatch"). Numbers
//     and booleans are compared in their JSON spelling ("42", "true").
//  7. methods[i]: the first method rule that lists the request method (case
//     insensitively) applies in addition to the rules above, in the same order:
//     groups.deny, scopes, roles, groups, expression. Rules are then named
//     "methods[i].scopes.all_of" and so on. A HEAD request is authorized as
//     the GET to the same resource would be (RFC 9110 §9.3.2: a server
//     answers HEAD with its GET handler): if no rule lists HEAD itself, the
//     first rule that lists GET applies.
//  8. expression: a CEL expression that must evaluate to true
//     ("expression_false"); an evaluation error, including a missing map key
//     and an exhausted cost budget, denies with "expression_error".
//
// # CEL environment
//
// Expressions are parsed and type-checked by Compile; an expression whose
// type is not bool is a compile error (write identity.claims.admin == true,
// not identity.claims.admin). The variables are:
//
//	identity  map(string, dyn)
//	  .subject        string
//	  .issuer         string
//	  .provider       string   configured identity source name
//	  .method         string   "jwt", "api_key", "introspection", "mtls", "session", "anonymous";
//	                           the primary method of an AND chain
//	  .methods        list(string)  every method that authenticated, in chain order
//	  .credential_id  string
//	  .client_id      string
//	  .scopes         list(string)
//	  .roles          list(string)
//	  .groups         list(string)
//	  .claims         map(string, dyn)  the claims selected by configuration
//	  .expires_at     timestamp         0001-01-01T00:00:00Z if the credential never expires
//	  .anonymous      bool
//	  .credentials    list(map(string, dyn))  every credential's evidence, in chain
//	                           order (one element unless require_all): method, id,
//	                           subject, issuer, provider, expires_at (timestamp),
//	                           cert_thumbprint, key_binding {kind, value}
//	request   map(string, dyn)
//	  .method         string   upper case, e.g. "GET"; "GET" for a HEAD request
//	                           unless the expression spells "HEAD" somewhere
//	  .host           string
//	  .path           string
//	  .path_params    map(string, string)  named route parameters
//	  .headers        map(string, string)  lower-case names, first value only
//	  .query          map(string, string)  first value only
//	  .client_ip      string   "" if unknown
//	now       timestamp  the request time
//
// Besides the standard CEL functions and macros, the ext.Strings library
// (lowerAscii, split, replace, …) and the ext.Sets library
// (sets.contains, sets.intersects, sets.equivalent) are available, and
// numbers of different types compare (claims decoded from JSON are doubles).
//
// Indexing a missing map key is an evaluation error, so
// request.headers["x-tenant"] == "acme" denies with expression_error when the
// header is absent (fail closed). Where absence should simply be false, test
// for presence first: "x-tenant" in request.headers && request.headers["x-tenant"] == "acme".
//
// Examples:
//
//	request.path_params.id == identity.subject || "admin" in identity.roles
//	request.headers["x-tenant"] == identity.claims.tenant
//	now < identity.expires_at
//	request.client_ip.startsWith("10.")
//	sets.intersects(identity.groups, ["ops", "sre"])
//
// # Limits
//
// An expression may be at most MaxExpressionBytes long, and one evaluation
// may spend at most CostLimit units of CEL's cost model (roughly one unit per
// operation, more for string and list work); a policy therefore cannot stall
// the gateway however large the caller's lists or headers are.
package authz

import (
	"errors"
	"fmt"
	"net/http"
	"net/netip"
	"net/url"
	"slices"
	"sort"
	"strconv"
	"strings"
	"time"

	"cel.dev/cel-go/cel"

	"github.com/gatehouse/gatehouse/internal/identity"
)

// Spec is one policy as configured; the config layer converts its YAML
// types into it. The zero Spec denies anonymous callers and allows every
// authenticated one.
type Spec struct {
	// Scopes are the OAuth scopes the credential must carry.
	Scopes ScopeRule
	// Roles are the roles the caller must have.
	Roles ListRule
	// Groups are the groups the caller must (or must not) be in:
	// identity.Groups, i.e. IdP groups or API-key consumer groups.
	Groups GroupRule
	// Claims maps a claim (a key of identity.Claims) to its allowed values;
	// the claim must equal one of them (for an array claim, one element
	// must). A missing claim fails.
	Claims map[string][]string
	// Methods are per-method rules: the first whose Methods contain the
	// request method applies in addition to the rules above.
	Methods []MethodRule
	// Expression is a CEL expression that must evaluate to true; "" for
	// none. See the package documentation for its environment.
	Expression string
	// AllowAnonymous lets an anonymous identity reach the other rules.
	// Default false: anonymous callers are denied with "anonymous_denied"
	// before any other rule is looked at.
	AllowAnonymous bool
}

// ScopeRule requires all scopes of AllOf and, if AnyOf is not empty, at least
// one of AnyOf.
type ScopeRule struct{ AllOf, AnyOf []string }

// ListRule requires all values of AllOf and, if AnyOf is not empty, at least
// one of AnyOf.
type ListRule struct{ AllOf, AnyOf []string }

// GroupRule is a ListRule with a deny list: membership of any group in Deny
// denies, and is checked before anything else.
type GroupRule struct{ AllOf, AnyOf, Deny []string }

// MethodRule holds rules that apply only to requests whose method is one of
// Methods (compared case-insensitively).
type MethodRule struct {
	Methods    []string
	Scopes     ScopeRule
	Roles      ListRule
	Groups     GroupRule
	Expression string
}

// Reason is a stable code for why a decision was made. The codes appear in
// audit events and `gatehouse explain`; they never change meaning.
type Reason string

// Decision reasons.
const (
	ReasonOK              Reason = "ok"
	ReasonAnonymousDenied Reason = "anonymous_denied"
	ReasonScopeMissing    Reason = "scope_missing"
	ReasonRoleMissing     Reason = "role_missing"
	ReasonGroupMissing    Reason = "group_missing"
	ReasonGroupDenied     Reason = "group_denied"
	ReasonClaimMismatch   Reason = "claim_mismatch"
	ReasonExpressionFalse Reason = "expression_false"
	ReasonExpressionError Reason = "expression_error"
)

// Input is the request as a policy sees it. Evaluate reads it and never
// modifies or retains it.
type Input struct {
	// Identity is the authenticated caller; nil counts as anonymous.
	Identity   *identity.Identity
	Method     string
	Host       string
	Path       string
	PathParams map[string]string
	Headers    http.Header
	Query      url.Values
	ClientIP   netip.Addr
	// Now is the request time, the CEL variable now; zero means time.Now().
	Now time.Time
}

// Decision is the outcome of a policy for one request.
type Decision struct {
	Allow bool
	// Reason is ReasonOK when allowed, else why the request was denied.
	Reason Reason
	// Rule names the rule that denied ("scopes.all_of", "groups.deny",
	// "methods[0].roles.any_of", "claims.tenant", "expression", …); "" when
	// allowed.
	Rule string
	// MissingScopes, for ReasonScopeMissing, are the scopes that would
	// satisfy the failing rule: the missing all_of scopes, or the whole
	// any_of list.
	MissingScopes []string
	// Trace lists every configured rule and its outcome, in evaluation
	// order; only Explain fills it.
	Trace []Step
}

// Step is one rule's outcome in a Decision's Trace.
type Step struct {
	Rule   string
	Passed bool
	Detail string
}

// CompileError is a policy that cannot be compiled. Field names the
// offending field relative to the policy ("expression",
// "methods[1].expression", "claims.tenant"), so the config layer can point
// at the file, line and column.
type CompileError struct {
	Field string
	Msg   string
}

func (e *CompileError) Error() string { return "authz: " + e.Field + ": " + e.Msg }

// Policy is a compiled Spec. It is immutable and safe for concurrent use.
type Policy struct {
	name           string
	allowAnonymous bool
	checks         []check // groups.deny, scopes, roles, groups, claims
	methods        []methodRule
	expr           *check
}

type methodRule struct {
	prefix  string // "methods[i]"
	methods []string
	checks  []check // groups.deny, scopes, roles, groups, expression
}

// Name is the policy's configured name.
func (p *Policy) Name() string { return p.name }

// Compile validates s and compiles and type-checks its CEL expressions.
// Every problem is reported as a *CompileError, several joined with
// errors.Join.
func Compile(name string, s Spec) (*Policy, error) {
	p := &Policy{name: name, allowAnonymous: s.AllowAnonymous}
	var errs []error
	p.checks = listChecks("", s.Scopes, s.Roles, s.Groups)
	claimNames := make([]string, 0, len(s.Claims))
	for c := range s.Claims {
		claimNames = append(claimNames, c)
	}
	sort.Strings(claimNames)
	for _, c := range claimNames {
		vals := s.Claims[c]
		if c == "" {
			errs = append(errs, &CompileError{Field: "claims", Msg: "empty claim name"})
			continue
		}
		if len(vals) == 0 {
			errs = append(errs, &CompileError{Field: "claims." + c, Msg: "lists no allowed values"})
			continue
		}
		p.checks = append(p.checks, check{rule: "claims." + c, kind: kindClaim, claim: c, values: slices.Clone(vals), reason: ReasonClaimMismatch})
	}
	for i, m := range s.Methods {
		prefix := fmt.Sprintf("methods[%d]", i)
		mr := methodRule{prefix: prefix}
		if len(m.Methods) == 0 {
			errs = append(errs, &CompileError{Field: prefix + ".methods", Msg: "lists no HTTP methods"})
		}
		for _, meth := range m.Methods {
			mr.methods = append(mr.methods, strings.ToUpper(strings.TrimSpace(meth)))
		}
		mr.checks = listChecks(prefix+".", m.Scopes, m.Roles, m.Groups)
		if m.Expression != "" {
			c, err := compileExpr(prefix+".expression", m.Expression)
			if err != nil {
				errs = append(errs, err)
			} else {
				mr.checks = append(mr.checks, *c)
			}
		}
		p.methods = append(p.methods, mr)
	}
	if s.Expression != "" {
		c, err := compileExpr("expression", s.Expression)
		if err != nil {
			errs = append(errs, err)
		} else {
			p.expr = c
		}
	}
	if len(errs) > 0 {
		return nil, errors.Join(errs...)
	}
	return p, nil
}

// listChecks builds the checks for deny, scopes, roles and groups, in
// evaluation order, skipping empty rules.
func listChecks(prefix string, sc ScopeRule, ro ListRule, gr GroupRule) []check {
	var cs []check
	add := func(rule string, f field, op op, vals []string, reason Reason) {
		if len(vals) > 0 {
			cs = append(cs, check{rule: prefix + rule, kind: kindList, field: f, op: op, values: slices.Clone(vals), reason: reason})
		}
	}
	add("groups.deny", fieldGroups, opDeny, gr.Deny, ReasonGroupDenied)
	add("scopes.all_of", fieldScopes, opAllOf, sc.AllOf, ReasonScopeMissing)
	add("scopes.any_of", fieldScopes, opAnyOf, sc.AnyOf, ReasonScopeMissing)
	add("roles.all_of", fieldRoles, opAllOf, ro.AllOf, ReasonRoleMissing)
	add("roles.any_of", fieldRoles, opAnyOf, ro.AnyOf, ReasonRoleMissing)
	add("groups.all_of", fieldGroups, opAllOf, gr.AllOf, ReasonGroupMissing)
	add("groups.any_of", fieldGroups, opAnyOf, gr.AnyOf, ReasonGroupMissing)
	return cs
}

type kind uint8

const (
	kindList kind = iota
	kindClaim
	kindExpr
)

type field uint8

const (
	fieldScopes field = iota
	fieldRoles
	fieldGroups
)

type op uint8

const (
	opAllOf op = iota
	opAnyOf
	opDeny
)

// check is one compiled rule.
type check struct {
	rule   string
	reason Reason
	kind   kind
	field  field
	op     op
	values []string
	claim  string
	prog   cel.Program
	info   exprInfo // expressions: what they read, whether they name HEAD
}

// evaluation is the per-request state: the identity to use and the lazily
// built CEL activation, shared by the policy's expressions.
type evaluation struct {
	in  *Input
	id  *identity.Identity
	act *activation
	// rawAct is the activation of expressions that name HEAD and so see
	// the method as sent.
	rawAct  *activation
	explain bool
}

// result is one check's outcome; detail is only computed when explaining.
type result struct {
	ok      bool
	reason  Reason // overrides check.reason (expression_error)
	missing []string
	detail  string
}

func (c *check) eval(e *evaluation) result {
	switch c.kind {
	case kindList:
		return c.evalList(e)
	case kindClaim:
		return c.evalClaim(e)
	default:
		return c.evalExpr(e)
	}
}

func (c *check) evalList(e *evaluation) result {
	var have []string
	switch c.field {
	case fieldScopes:
		have = e.id.Scopes
	case fieldRoles:
		have = e.id.Roles
	default:
		have = e.id.Groups
	}
	var r result
	switch c.op {
	case opAllOf:
		r.ok = true
		for _, v := range c.values {
			if !slices.Contains(have, v) {
				r.ok = false
				break
			}
		}
		if !r.ok && (c.field == fieldScopes || e.explain) {
			for _, v := range c.values {
				if !slices.Contains(have, v) {
					r.missing = append(r.missing, v)
				}
			}
		}
		if e.explain {
			if r.ok {
				r.detail = fmt.Sprintf("has all of %q", c.values)
			} else {
				r.detail = fmt.Sprintf("missing %q", r.missing)
			}
		}
		if c.field != fieldScopes {
			r.missing = nil
		}
	case opAnyOf:
		r.ok = containsAny(have, c.values)
		if !r.ok && c.field == fieldScopes {
			r.missing = slices.Clone(c.values)
		}
		if e.explain {
			if r.ok {
				r.detail = fmt.Sprintf("has one of %q", c.values)
			} else {
				r.detail = fmt.Sprintf("has none of %q", c.values)
			}
		}
	case opDeny:
		r.ok = true
		for _, v := range c.values {
			if slices.Contains(have, v) {
				r.ok = false
				if e.explain {
					r.detail = fmt.Sprintf("in denied group %q", v)
				}
				break
			}
		}
		if r.ok && e.explain {
			r.detail = fmt.Sprintf("in none of %q", c.values)
		}
	}
	return r
}

func containsAny(have, want []string) bool {
	for _, w := range want {
		if slices.Contains(have, w) {
			return true
		}
	}
	return false
}

func (c *check) evalClaim(e *evaluation) result {
	v, present := e.id.Claims[c.claim]
	var r result
	switch v := v.(type) {
	case []any:
		for _, el := range v {
			if s, ok := claimString(el); ok && slices.Contains(c.values, s) {
				r.ok = true
				break
			}
		}
	case []string:
		r.ok = containsAny(v, c.values)
	default:
		s, ok := claimString(v)
		r.ok = ok && slices.Contains(c.values, s)
	}
	if e.explain {
		switch {
		case !present:
			r.detail = fmt.Sprintf("claim %q absent; want one of %q", c.claim, c.values)
		case r.ok:
			r.detail = fmt.Sprintf("claim %q = %v matches", c.claim, v)
		default:
			r.detail = fmt.Sprintf("claim %q = %v; want one of %q", c.claim, v, c.values)
		}
	}
	return r
}

// claimString spells a scalar claim value the way it is written in JSON.
func claimString(v any) (string, bool) {
	switch v := v.(type) {
	case string:
		return v, true
	case bool:
		return strconv.FormatBool(v), true
	case float64:
		return strconv.FormatFloat(v, 'f', -1, 64), true
	case int:
		return strconv.Itoa(v), true
	case int64:
		return strconv.FormatInt(v, 10), true
	}
	return "", false
}

// Evaluate decides whether the request in may proceed. It compiles
// nothing; a policy without expressions does not allocate on the allow
// path. Safe for concurrent use.
func (p *Policy) Evaluate(in *Input) Decision { return p.evaluate(in, false) }

// Explain returns the same decision as Evaluate, with Trace listing every
// configured rule and its outcome, for `gatehouse explain`. Unlike
// Evaluate it does not stop at the first failing rule, so the trace shows
// everything a caller lacks; the decision is still the first failure.
func (p *Policy) Explain(in *Input) Decision { return p.evaluate(in, true) }

func (p *Policy) evaluate(in *Input, explain bool) Decision {
	e := evaluation{in: in, id: in.Identity, explain: explain}
	if e.id == nil {
		e.id = identity.Anonymous
	}
	var d Decision
	decided := false
	record := func(rule string, c *check, r result) {
		if explain {
			d.Trace = append(d.Trace, Step{Rule: rule, Passed: r.ok, Detail: r.detail})
		}
		if r.ok || decided {
			return
		}
		decided = true
		d.Rule = rule
		d.Reason = r.reason
		if d.Reason == "" && c != nil {
			d.Reason = c.reason
		}
		d.MissingScopes = r.missing
	}
	if e.id.IsAnonymous() {
		r := result{ok: p.allowAnonymous, reason: ReasonAnonymousDenied}
		if explain {
			r.detail = "anonymous caller; allow_anonymous is " + strconv.FormatBool(p.allowAnonymous)
		}
		record("anonymous", nil, r)
	} else if explain {
		record("anonymous", nil, result{ok: true, detail: "authenticated by " + string(e.id.Method)})
	}
	for i := range p.checks {
		if decided && !explain {
			break
		}
		c := &p.checks[i]
		record(c.rule, c, c.eval(&e))
	}
	if !decided || explain {
		if m := p.methodRule(in.Method); m != nil {
			if explain {
				d.Trace = append(d.Trace, Step{Rule: m.prefix, Passed: true, Detail: "applies to " + in.Method})
			}
			for i := range m.checks {
				if decided && !explain {
					break
				}
				c := &m.checks[i]
				record(c.rule, c, c.eval(&e))
			}
		} else if explain && len(p.methods) > 0 {
			d.Trace = append(d.Trace, Step{Rule: "methods", Passed: true, Detail: "no method rule lists " + in.Method})
		}
	}
	if p.expr != nil && (!decided || explain) {
		record(p.expr.rule, p.expr, p.expr.eval(&e))
	}
	if !decided {
		d.Allow, d.Reason = true, ReasonOK
	}
	return d
}

// methodRule returns the first rule listing method; for HEAD, if no rule
// lists HEAD, the first listing GET.
func (p *Policy) methodRule(method string) *methodRule {
	if m := p.firstListing(method); m != nil || !strings.EqualFold(method, "HEAD") {
		return m
	}
	return p.firstListing("GET")
}

func (p *Policy) firstListing(method string) *methodRule {
	for i := range p.methods {
		for _, m := range p.methods[i].methods {
			if strings.EqualFold(m, method) {
				return &p.methods[i]
			}
		}
	}
	return nil
}

// authzMethod is request.method as expressions that do not name HEAD see
// it: HEAD is authorized as GET.
func authzMethod(m string) string {
	if m == "HEAD" {
		return "GET"
	}
	return m
}

// Reads returns the request headers and query parameters the policy's
// expressions read; see Reads.
func (p *Policy) Reads() Reads {
	var r Reads
	if p.expr != nil {
		r.merge(p.expr.info.reads)
	}
	for _, m := range p.methods {
		for _, c := range m.checks {
			if c.kind == kindExpr {
				r.merge(c.info.reads)
			}
		}
	}
	slices.Sort(r.Headers)
	slices.Sort(r.Query)
	return r
}
