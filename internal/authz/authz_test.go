package authz

import (
	"errors"
	"net/http"
	"net/netip"
	"net/url"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/gatehouse/gatehouse/internal/identity"
)

var t0 = time.Date(2026, 11, 1, 12, 0, 0, 0, time.UTC)

// composite is an AND chain's identity: a client certificate and a token
// bound to it, the token primary.
func composite(mods ...func(*identity.Identity)) *identity.Identity {
	cert := &identity.Identity{Method: identity.MethodMTLS, Subject: "CN=svc", CredentialID: "serial-1",
		CertThumbprint: "3q2-7wAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA", ExpiresAt: t0.Add(30 * time.Minute)}
	tok := user(func(id *identity.Identity) {
		id.KeyBinding = identity.KeyBinding{Kind: "x5t#S256", Value: cert.CertThumbprint}
	})
	id := identity.Compose([]*identity.Identity{cert, tok}, 1)
	for _, m := range mods {
		m(id)
	}
	return id
}

func user(mod func(*identity.Identity)) *identity.Identity {
	id := &identity.Identity{
		Subject: "u1", Issuer: "https://idp.example", Provider: "idp", Method: identity.MethodJWT,
		CredentialID: "jti-1", ClientID: "web",
		Scopes:    []string{"orders:read", "profile"},
		Roles:     []string{"reader"},
		Groups:    []string{"staff"},
		Claims:    map[string]any{"tenant": "acme", "tier": 2.0, "admin": true, "teams": []any{"red", "blue"}},
		ExpiresAt: t0.Add(time.Hour),
	}
	if mod != nil {
		mod(id)
	}
	return id
}

func input(id *identity.Identity, method string) *Input {
	return &Input{
		Identity: id, Method: method, Host: "api.example", Path: "/users/u1",
		PathParams: map[string]string{"id": "u1"},
		Headers:    http.Header{"X-Tenant": {"acme", "other"}, "Accept": {"*/*"}},
		Query:      url.Values{"page": {"2"}},
		ClientIP:   netip.MustParseAddr("10.1.2.3"),
		Now:        t0,
	}
}

func mustCompile(t testing.TB, s Spec) *Policy {
	t.Helper()
	p, err := Compile("test", s)
	if err != nil {
		t.Fatalf("Compile: %v", err)
	}
	return p
}

func TestRules(t *testing.T) {
	for _, tc := range []struct {
		name    string
		spec    Spec
		id      *identity.Identity
		method  string
		reason  Reason
		rule    string
		missing []string
	}{
		{name: "empty policy allows user", spec: Spec{}, id: user(nil), reason: ReasonOK},
		{name: "empty policy denies anonymous", spec: Spec{}, id: identity.Anonymous, reason: ReasonAnonymousDenied, rule: "anonymous"},
		{name: "nil identity is anonymous", spec: Spec{}, id: nil, reason: ReasonAnonymousDenied, rule: "anonymous"},
		{name: "anonymous allowed", spec: Spec{AllowAnonymous: true}, id: identity.Anonymous, reason: ReasonOK},
		{name: "anonymous allowed still needs scopes", spec: Spec{AllowAnonymous: true, Scopes: ScopeRule{AllOf: []string{"a"}}},
			id: identity.Anonymous, reason: ReasonScopeMissing, rule: "scopes.all_of", missing: []string{"a"}},
		{name: "anonymous denied before group deny", spec: Spec{Groups: GroupRule{Deny: []string{"x"}}}, id: nil, reason: ReasonAnonymousDenied, rule: "anonymous"},

		{name: "scopes all_of ok", spec: Spec{Scopes: ScopeRule{AllOf: []string{"orders:read", "profile"}}}, id: user(nil), reason: ReasonOK},
		{name: "scopes all_of missing", spec: Spec{Scopes: ScopeRule{AllOf: []string{"orders:read", "orders:write", "admin"}}}, id: user(nil),
			reason: ReasonScopeMissing, rule: "scopes.all_of", missing: []string{"orders:write", "admin"}},
		{name: "scopes any_of ok", spec: Spec{Scopes: ScopeRule{AnyOf: []string{"x", "profile"}}}, id: user(nil), reason: ReasonOK},
		{name: "scopes any_of missing", spec: Spec{Scopes: ScopeRule{AnyOf: []string{"x", "y"}}}, id: user(nil),
			reason: ReasonScopeMissing, rule: "scopes.any_of", missing: []string{"x", "y"}},
		{name: "all_of checked before any_of", spec: Spec{Scopes: ScopeRule{AllOf: []string{"a"}, AnyOf: []string{"b"}}}, id: user(nil),
			reason: ReasonScopeMissing, rule: "scopes.all_of", missing: []string{"a"}},

		{name: "roles all_of ok", spec: Spec{Roles: ListRule{AllOf: []string{"reader"}}}, id: user(nil), reason: ReasonOK},
		{name: "roles all_of missing", spec: Spec{Roles: ListRule{AllOf: []string{"reader", "writer"}}}, id: user(nil), reason: ReasonRoleMissing, rule: "roles.all_of"},
		{name: "roles any_of ok", spec: Spec{Roles: ListRule{AnyOf: []string{"admin", "reader"}}}, id: user(nil), reason: ReasonOK},
		{name: "roles any_of missing", spec: Spec{Roles: ListRule{AnyOf: []string{"admin"}}}, id: user(nil), reason: ReasonRoleMissing, rule: "roles.any_of"},

		{name: "groups all_of ok", spec: Spec{Groups: GroupRule{AllOf: []string{"staff"}}}, id: user(nil), reason: ReasonOK},
		{name: "groups all_of missing", spec: Spec{Groups: GroupRule{AllOf: []string{"staff", "ops"}}}, id: user(nil), reason: ReasonGroupMissing, rule: "groups.all_of"},
		{name: "groups any_of missing", spec: Spec{Groups: GroupRule{AnyOf: []string{"ops"}}}, id: user(nil), reason: ReasonGroupMissing, rule: "groups.any_of"},
		{name: "groups deny ok", spec: Spec{Groups: GroupRule{Deny: []string{"suspended"}}}, id: user(nil), reason: ReasonOK},
		{name: "groups deny hit", spec: Spec{Groups: GroupRule{Deny: []string{"suspended"}}},
			id: user(func(id *identity.Identity) { id.Groups = append(id.Groups, "suspended") }), reason: ReasonGroupDenied, rule: "groups.deny"},
		{name: "groups deny before scopes", spec: Spec{Scopes: ScopeRule{AllOf: []string{"nope"}}, Groups: GroupRule{Deny: []string{"staff"}}},
			id: user(nil), reason: ReasonGroupDenied, rule: "groups.deny"},
		{name: "scopes before roles", spec: Spec{Scopes: ScopeRule{AllOf: []string{"nope"}}, Roles: ListRule{AllOf: []string{"nope"}}},
			id: user(nil), reason: ReasonScopeMissing, rule: "scopes.all_of", missing: []string{"nope"}},
		{name: "roles before groups", spec: Spec{Roles: ListRule{AllOf: []string{"nope"}}, Groups: GroupRule{AllOf: []string{"nope"}}},
			id: user(nil), reason: ReasonRoleMissing, rule: "roles.all_of"},

		{name: "claim string ok", spec: Spec{Claims: map[string][]string{"tenant": {"acme", "globex"}}}, id: user(nil), reason: ReasonOK},
		{name: "claim string mismatch", spec: Spec{Claims: map[string][]string{"tenant": {"globex"}}}, id: user(nil), reason: ReasonClaimMismatch, rule: "claims.tenant"},
		{name: "claim absent", spec: Spec{Claims: map[string][]string{"org": {"x"}}}, id: user(nil), reason: ReasonClaimMismatch, rule: "claims.org"},
		{name: "claim array element", spec: Spec{Claims: map[string][]string{"teams": {"blue"}}}, id: user(nil), reason: ReasonOK},
		{name: "claim array mismatch", spec: Spec{Claims: map[string][]string{"teams": {"green"}}}, id: user(nil), reason: ReasonClaimMismatch, rule: "claims.teams"},
		{name: "claim number", spec: Spec{Claims: map[string][]string{"tier": {"2"}}}, id: user(nil), reason: ReasonOK},
		{name: "claim bool", spec: Spec{Claims: map[string][]string{"admin": {"true"}}}, id: user(nil), reason: ReasonOK},
		{name: "claims in name order", spec: Spec{Claims: map[string][]string{"zz": {"x"}, "aa": {"x"}}}, id: user(nil), reason: ReasonClaimMismatch, rule: "claims.aa"},
		{name: "groups before claims", spec: Spec{Claims: map[string][]string{"aa": {"x"}}, Groups: GroupRule{AnyOf: []string{"ops"}}}, id: user(nil),
			reason: ReasonGroupMissing, rule: "groups.any_of"},

		{name: "expression true", spec: Spec{Expression: `identity.subject == "u1"`}, id: user(nil), reason: ReasonOK},
		{name: "expression false", spec: Spec{Expression: `identity.subject == "u2"`}, id: user(nil), reason: ReasonExpressionFalse, rule: "expression"},
		{name: "claims before expression", spec: Spec{Expression: `false`, Claims: map[string][]string{"tenant": {"x"}}}, id: user(nil),
			reason: ReasonClaimMismatch, rule: "claims.tenant"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			p := mustCompile(t, tc.spec)
			method := tc.method
			if method == "" {
				method = "GET"
			}
			d := p.Evaluate(input(tc.id, method))
			if d.Allow != (tc.reason == ReasonOK) || d.Reason != tc.reason || d.Rule != tc.rule {
				t.Fatalf("got allow=%v %s at %q, want %s at %q", d.Allow, d.Reason, d.Rule, tc.reason, tc.rule)
			}
			if !slices.Equal(d.MissingScopes, tc.missing) {
				t.Fatalf("MissingScopes %q, want %q", d.MissingScopes, tc.missing)
			}
			if d.Trace != nil {
				t.Fatal("Evaluate filled Trace")
			}
			e := p.Explain(input(tc.id, method))
			if e.Allow != d.Allow || e.Reason != d.Reason || e.Rule != d.Rule || !slices.Equal(e.MissingScopes, d.MissingScopes) {
				t.Fatalf("Explain %+v differs from Evaluate %+v", e, d)
			}
		})
	}
}

func TestMethodRules(t *testing.T) {
	p := mustCompile(t, Spec{
		Scopes: ScopeRule{AnyOf: []string{"orders:read", "orders:write"}},
		Methods: []MethodRule{
			{Methods: []string{"GET", "head"}, Roles: ListRule{AnyOf: []string{"reader", "writer"}}},
			{Methods: []string{"POST", "DELETE"}, Roles: ListRule{AllOf: []string{"writer"}}, Scopes: ScopeRule{AllOf: []string{"orders:write"}}},
			{Methods: []string{"DELETE"}, Roles: ListRule{AllOf: []string{"never-applies"}}},
			{Methods: []string{"PATCH"}, Groups: GroupRule{Deny: []string{"staff"}}, Expression: `identity.subject == "boss"`},
		},
		Expression: `request.method != "PUT"`,
	})
	reader := user(nil)
	writer := user(func(id *identity.Identity) { id.Roles = []string{"writer"}; id.Scopes = []string{"orders:write"} })
	nobody := user(func(id *identity.Identity) { id.Roles = nil })
	for _, tc := range []struct {
		name    string
		id      *identity.Identity
		method  string
		reason  Reason
		rule    string
		missing []string
	}{
		{"reader GET", reader, "GET", ReasonOK, "", nil},
		{"reader HEAD (case-insensitive config)", reader, "HEAD", ReasonOK, "", nil},
		{"writer GET", writer, "GET", ReasonOK, "", nil},
		{"no role GET", nobody, "GET", ReasonRoleMissing, "methods[0].roles.any_of", nil},
		{"reader POST", reader, "POST", ReasonScopeMissing, "methods[1].scopes.all_of", []string{"orders:write"}},
		{"writer POST", writer, "POST", ReasonOK, "", nil},
		{"writer DELETE: first matching rule only", writer, "DELETE", ReasonOK, "", nil},
		{"reader DELETE", reader, "DELETE", ReasonScopeMissing, "methods[1].scopes.all_of", []string{"orders:write"}},
		{"PATCH group deny", reader, "PATCH", ReasonGroupDenied, "methods[3].groups.deny", nil},
		{"PATCH expression", user(func(id *identity.Identity) { id.Groups = nil }), "PATCH", ReasonExpressionFalse, "methods[3].expression", nil},
		{"PUT: no method rule, base expression", writer, "PUT", ReasonExpressionFalse, "expression", nil},
		{"base rules before method rules", user(func(id *identity.Identity) { id.Scopes = nil }), "GET", ReasonScopeMissing, "scopes.any_of",
			[]string{"orders:read", "orders:write"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			d := p.Evaluate(input(tc.id, tc.method))
			if d.Allow != (tc.reason == ReasonOK) || d.Reason != tc.reason || d.Rule != tc.rule || !slices.Equal(d.MissingScopes, tc.missing) {
				t.Fatalf("got allow=%v %s at %q missing %q, want %s at %q missing %q", d.Allow, d.Reason, d.Rule, d.MissingScopes, tc.reason, tc.rule, tc.missing)
			}
		})
	}
}

func TestExpressions(t *testing.T) {
	for _, tc := range []struct {
		name   string
		expr   string
		id     *identity.Identity
		reason Reason
	}{
		{"path param equals subject", `request.path_params.id == identity.subject`, user(nil), ReasonOK},
		{"path param differs", `request.path_params.id == identity.subject`, user(func(id *identity.Identity) { id.Subject = "u2" }), ReasonExpressionFalse},
		{"role in list", `"reader" in identity.roles`, user(nil), ReasonOK},
		{"role not in list", `"admin" in identity.roles`, user(nil), ReasonExpressionFalse},
		{"header vs claim, first value, lower-case key", `request.headers["x-tenant"] == identity.claims.tenant`, user(nil), ReasonOK},
		{"now before expiry", `now < identity.expires_at`, user(nil), ReasonOK},
		{"now after expiry", `now < identity.expires_at`, user(func(id *identity.Identity) { id.ExpiresAt = t0.Add(-time.Second) }), ReasonExpressionFalse},
		{"client ip prefix", `request.client_ip.startsWith("10.")`, user(nil), ReasonOK},
		{"all identity fields", `identity.issuer == "https://idp.example" && identity.provider == "idp" && identity.method == "jwt" &&
			identity.credential_id == "jti-1" && identity.client_id == "web" && "profile" in identity.scopes &&
			"staff" in identity.groups && !identity.anonymous`, user(nil), ReasonOK},
		{"all request fields", `request.method == "GET" && request.host == "api.example" && request.path == "/users/u1" &&
			request.query.page == "2" && request.headers.accept == "*/*" && !("X-Tenant" in request.headers)`, user(nil), ReasonOK},
		{"iterate headers", `request.headers.exists(k, k == "accept") && size(request.headers) == 2`, user(nil), ReasonOK},
		{"map equality", `request.query == {"page": "2"} && request.path_params == {"id": "u1"}`, user(nil), ReasonOK},
		{"iterate identity", `identity.exists(k, k == "subject") && size(identity) == 14 && size(request) == 7`, user(nil), ReasonOK},
		{"has macro", `has(request.headers.accept) && !has(request.query.nope) && has(identity.claims.tenant)`, user(nil), ReasonOK},
		{"numeric claim cross-type compare", `identity.claims.tier >= 2`, user(nil), ReasonOK},
		{"bool claim", `identity.claims.admin == true`, user(nil), ReasonOK},
		{"array claim", `"red" in identity.claims.teams`, user(nil), ReasonOK},
		{"strings ext", `identity.subject.upperAscii() == "U1"`, user(nil), ReasonOK},
		{"sets ext", `sets.intersects(identity.groups, ["ops", "staff"])`, user(nil), ReasonOK},
		{"timestamp arithmetic", `identity.expires_at - now == duration("1h")`, user(nil), ReasonOK},
		{"nil claims map", `!("tenant" in identity.claims)`, user(func(id *identity.Identity) { id.Claims = nil }), ReasonOK},
		{"anonymous identity", `identity.anonymous && identity.subject == "" && size(identity.scopes) == 0`, identity.Anonymous, ReasonOK},
		{"single credential evidence", `identity.methods == ["jwt"] && size(identity.credentials) == 1 &&
			identity.credentials[0].method == "jwt" && identity.credentials[0].id == "jti-1" &&
			identity.credentials[0].expires_at == identity.expires_at && identity.credentials[0].key_binding.kind == ""`, user(nil), ReasonOK},
		{"composite: both methods", `identity.methods == ["mtls", "jwt"] && identity.method == "jwt"`, composite(), ReasonOK},
		{"composite: token bound to the certificate", `identity.credentials.exists(c, c.method == "mtls" &&
			identity.credentials.exists(t, t.method == "jwt" && t.key_binding.kind == "x5t#S256" && t.key_binding.value == c.cert_thumbprint))`,
			composite(), ReasonOK},
		{"composite: binding mismatch", `identity.credentials[1].key_binding.value == identity.credentials[0].cert_thumbprint`,
			composite(func(id *identity.Identity) { id.Credentials[1].KeyBinding.Value = "other" }), ReasonExpressionFalse},
		{"composite: earliest expiry", `identity.expires_at == identity.credentials[0].expires_at && identity.credentials[1].expires_at > identity.expires_at`,
			composite(), ReasonOK},
		{"anonymous has no credentials", `size(identity.credentials) == 0 && identity.methods == ["anonymous"]`, identity.Anonymous, ReasonOK},
		{"missing header is an error", `request.headers["x-missing"] == "a"`, user(nil), ReasonExpressionError},
		{"missing claim is an error", `identity.claims.nope == "a"`, user(nil), ReasonExpressionError},
		{"division by zero", `1 / (size(identity.roles) - 1) == 1`, user(nil), ReasonExpressionError},
		{"cost limit", `identity.roles.all(a, identity.roles.all(b, identity.roles.all(c, a + b + c != "")))`,
			user(func(id *identity.Identity) {
				id.Roles = make([]string, 200)
				for i := range id.Roles {
					id.Roles[i] = "r"
				}
			}), ReasonExpressionError},
	} {
		t.Run(tc.name, func(t *testing.T) {
			p := mustCompile(t, Spec{Expression: tc.expr, AllowAnonymous: true})
			d := p.Evaluate(input(tc.id, "GET"))
			if d.Reason != tc.reason || d.Allow != (tc.reason == ReasonOK) {
				x := p.Explain(input(tc.id, "GET"))
				t.Fatalf("got %s, want %s; trace %+v", d.Reason, tc.reason, x.Trace)
			}
			if !d.Allow && d.Rule != "expression" {
				t.Fatalf("rule %q", d.Rule)
			}
		})
	}
}

func TestNowDefaultsToClock(t *testing.T) {
	p := mustCompile(t, Spec{Expression: `now > timestamp("2020-01-01T00:00:00Z")`})
	in := input(user(nil), "GET")
	in.Now = time.Time{}
	if d := p.Evaluate(in); !d.Allow {
		t.Fatalf("%+v", d)
	}
}

func TestCompileErrors(t *testing.T) {
	for _, tc := range []struct {
		name   string
		spec   Spec
		fields []string
		msg    string
	}{
		{"syntax error", Spec{Expression: `identity.subject ==`}, []string{"expression"}, "Syntax error"},
		{"unknown variable", Spec{Expression: `user.name == "x"`}, []string{"expression"}, "undeclared reference"},
		{"non-bool output", Spec{Expression: `identity.subject`}, []string{"expression"}, "want bool"},
		{"int output", Spec{Expression: `1 + 2`}, []string{"expression"}, "want bool"},
		{"unknown function", Spec{Expression: `frobnicate(identity.subject)`}, []string{"expression"}, "undeclared reference"},
		{"too long", Spec{Expression: strings.Repeat("true && ", 600) + "true"}, []string{"expression"}, "limit"},
		{"method expression", Spec{Methods: []MethodRule{{Methods: []string{"GET"}}, {Methods: []string{"POST"}, Expression: `1`}}},
			[]string{"methods[1].expression"}, "want bool"},
		{"method without methods", Spec{Methods: []MethodRule{{Roles: ListRule{AllOf: []string{"a"}}}}}, []string{"methods[0].methods"}, "no HTTP methods"},
		{"claim without values", Spec{Claims: map[string][]string{"tenant": nil}}, []string{"claims.tenant"}, "no allowed values"},
		{"several joined", Spec{Expression: `)`, Methods: []MethodRule{{Methods: []string{"GET"}, Expression: `nope`}}},
			[]string{"methods[0].expression", "expression"}, ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			p, err := Compile("bad", tc.spec)
			if err == nil || p != nil {
				t.Fatalf("Compile = %v, %v; want error", p, err)
			}
			var got []string
			errs := []error{err}
			if j, ok := err.(interface{ Unwrap() []error }); ok {
				errs = j.Unwrap()
			}
			for _, e := range errs {
				var ce *CompileError
				if !errors.As(e, &ce) {
					t.Fatalf("%T %v is not a *CompileError", e, e)
				}
				got = append(got, ce.Field)
				if !strings.Contains(ce.Msg, tc.msg) {
					t.Errorf("Msg %q does not contain %q", ce.Msg, tc.msg)
				}
			}
			if !slices.Equal(got, tc.fields) {
				t.Fatalf("fields %q, want %q (%v)", got, tc.fields, err)
			}
		})
	}
}

func TestExplainTrace(t *testing.T) {
	p := mustCompile(t, Spec{
		Scopes:     ScopeRule{AllOf: []string{"orders:read", "orders:write"}},
		Roles:      ListRule{AnyOf: []string{"reader"}},
		Groups:     GroupRule{Deny: []string{"suspended"}, AnyOf: []string{"ops"}},
		Claims:     map[string][]string{"tenant": {"acme"}},
		Methods:    []MethodRule{{Methods: []string{"GET"}, Roles: ListRule{AllOf: []string{"auditor"}}, Expression: `true`}},
		Expression: `identity.claims.nope == 1`,
	})
	d := p.Explain(input(user(nil), "GET"))
	want := []struct {
		rule   string
		passed bool
	}{
		{"anonymous", true},
		{"groups.deny", true},
		{"scopes.all_of", false},
		{"roles.any_of", true},
		{"groups.any_of", false},
		{"claims.tenant", true},
		{"methods[0]", true},
		{"methods[0].roles.all_of", false},
		{"methods[0].expression", true},
		{"expression", false},
	}
	if len(d.Trace) != len(want) {
		t.Fatalf("trace %+v", d.Trace)
	}
	for i, w := range want {
		s := d.Trace[i]
		if s.Rule != w.rule || s.Passed != w.passed || s.Detail == "" {
			t.Errorf("step %d = %+v, want %s passed=%v with a detail", i, s, w.rule, w.passed)
		}
	}
	if d.Allow || d.Reason != ReasonScopeMissing || d.Rule != "scopes.all_of" || !slices.Equal(d.MissingScopes, []string{"orders:write"}) {
		t.Fatalf("decision %+v", d)
	}
	if !strings.Contains(d.Trace[9].Detail, "error") {
		t.Fatalf("expression step %+v", d.Trace[9])
	}
	// A method without a rule is traced as such.
	d = p.Explain(input(user(nil), "POST"))
	if d.Trace[6].Rule != "methods" || !strings.Contains(d.Trace[6].Detail, "POST") {
		t.Fatalf("trace %+v", d.Trace)
	}
}

func TestConcurrentEvaluate(t *testing.T) {
	p := mustCompile(t, Spec{
		Scopes:     ScopeRule{AnyOf: []string{"orders:read"}},
		Methods:    []MethodRule{{Methods: []string{"DELETE"}, Roles: ListRule{AllOf: []string{"admin"}}}},
		Expression: `request.path_params.id == identity.subject || "admin" in identity.roles`,
	})
	var wg sync.WaitGroup
	for g := range 8 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range 200 {
				sub := "u1"
				if (g+i)%2 == 1 {
					sub = "u2"
				}
				in := input(user(func(id *identity.Identity) { id.Subject = sub }), "GET")
				d := p.Evaluate(in)
				if d.Allow != (sub == "u1") {
					t.Errorf("sub %s: %+v", sub, d)
					return
				}
				if i%50 == 0 {
					if x := p.Explain(in); x.Allow != d.Allow {
						t.Errorf("Explain %+v vs %+v", x, d)
						return
					}
				}
			}
		}()
	}
	wg.Wait()
}

func TestScopesOnlyDoesNotAllocate(t *testing.T) {
	p := mustCompile(t, Spec{Scopes: ScopeRule{AllOf: []string{"orders:read"}, AnyOf: []string{"profile", "x"}}, Roles: ListRule{AnyOf: []string{"reader"}}})
	in := input(user(nil), "GET")
	if n := testing.AllocsPerRun(100, func() { _ = p.Evaluate(in) }); n != 0 {
		t.Fatalf("%v allocations per Evaluate", n)
	}
}

func FuzzCompile(f *testing.F) {
	for _, s := range []string{
		`true`, `identity.subject == "u1"`, `request.headers["x-tenant"] == identity.claims.tenant`,
		`now < identity.expires_at`, `[1,2,3].map(x, x * 2).size() > 2`, `"a".matches("(a+)+$")`,
		`identity.roles.all(a, identity.roles.all(b, a == b))`, `)(`, `1/0 == 1`, `dyn(identity.claims.x)`,
	} {
		f.Add(s)
	}
	in := input(user(nil), "GET")
	f.Fuzz(func(t *testing.T, expr string) {
		p, err := Compile("fuzz", Spec{Expression: expr})
		if err != nil {
			var ce *CompileError
			if !errors.As(err, &ce) || ce.Field != "expression" {
				t.Fatalf("error %T %v", err, err)
			}
			return
		}
		d := p.Evaluate(in)
		if !d.Allow && d.Reason != ReasonExpressionFalse && d.Reason != ReasonExpressionError {
			t.Fatalf("decision %+v", d)
		}
	})
}
