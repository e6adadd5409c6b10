// Package deploy holds the Grafana dashboard and the Prometheus alerting
// rules shipped with Gatehouse. Its only Go code is this test: every metric
// (and every label) the dashboard and the rules use must exist in the
// gateway's metrics registry, so that renaming a metric or a label breaks
// the build instead of a production dashboard; and the rules file must be
// a well-formed Prometheus rules file with the annotations operators rely
// on.
//
// PromQL is read by a small tokenizer (promqlRefs) rather than by
// github.com/prometheus/prometheus/promql/parser, which would pull the
// whole Prometheus server module graph into go.mod for one test. The
// tokenizer knows enough of the grammar to tell metric names from
// functions, aggregations, keywords, label names, strings, durations and
// Grafana variables; its own tests below pin that down.
package deploy

import (
	"bytes"
	"encoding/json"
	"fmt"
	"os"
	"regexp"
	"slices"
	"sort"
	"strings"
	"testing"
	"time"
	"unicode"

	dto "github.com/prometheus/client_model/go"
	"go.yaml.in/yaml/v3"

	authnapikey "github.com/gatehouse/gatehouse/internal/authn/apikey"
	"github.com/gatehouse/gatehouse/internal/authn/introspect"
	"github.com/gatehouse/gatehouse/internal/keyset"
	"github.com/gatehouse/gatehouse/internal/metrics"
	"github.com/gatehouse/gatehouse/internal/pipeline"
	"github.com/gatehouse/gatehouse/internal/redisconn"
)

const (
	dashboardFile = "grafana/gatehouse-dashboard.json"
	rulesFile     = "prometheus/gatehouse-alerts.yaml"
	runbookPrefix = "https://github.com/gatehouse/gatehouse/blob/main/docs/operations.md#"
	operationsDoc = "../docs/operations.md"
)

// targetLabels are added by Prometheus when it scrapes, not by Gatehouse.
var targetLabels = []string{"job", "instance"}

// family is what the test knows of one metric family of the registry.
type family struct {
	typ    dto.MetricType
	labels map[string]bool
}

// registry builds the metrics registry as the gateway does (metrics.New
// with a provider health source), makes every family emit a series, and
// returns the families by name.
func registry(t *testing.T) map[string]family {
	t.Helper()
	now := time.Now()
	m := metrics.New(metrics.Options{Version: "test", Now: func() time.Time { return now }, Providers: func() []keyset.Health {
		return []keyset.Health{{Provider: "idp", Source: "https://idp.example/jwks", Keys: 1, LastRefresh: now.Add(-time.Minute), Ready: true}}
	},
		Resources:         func() []string { return []string{"keyset:0123abcd"} },
		KeyStoreListening: func() (bool, bool) { return true, true },
		Revocation:        func() (int, bool, bool) { return 3, false, true },
		RateLimits: func() (pipeline.RateLimitState, bool) {
			return pipeline.RateLimitState{Redis: &redisconn.Stats{Errors: 1, Breaker: redisconn.BreakerOpen}, Degraded: 2}, true
		},
	})
	o := m.Route("api", []string{"GET"})
	o.Authentication(pipeline.Authentication{Method: "jwt", Outcome: "deny", Reason: "token_expired", Provider: "idp"})
	o.Authorization(pipeline.Authorization{Outcome: "deny", Reason: "scope_missing"})
	o.Upstream(pipeline.UpstreamExchange{Duration: time.Millisecond, Error: pipeline.UpstreamTimeout})
	o.Done(pipeline.RequestDone{Status: 504, Duration: 2 * time.Millisecond, Overhead: time.Microsecond})
	if rl, ok := o.(pipeline.RateLimitObserver); ok {
		rl.RateLimit("standard", "burst", "limited")
		rl.Lockout("ip")
	}
	m.JWTCache(true)
	m.APIKeyCache("embedded", false)
	m.APIKeyStore("embedded", time.Millisecond, authnapikey.StoreError)
	m.KeyFetch("idp", nil)
	m.ClientCertificate("partners", "cert_revoked")
	io := m.Introspection("idp")
	io.CacheLookup(false)
	io.Call(time.Millisecond, introspect.ResultActive)
	m.Reloaded(nil, "0123abcd")

	gathered, err := m.Registry().Gather()
	if err != nil {
		t.Fatal(err)
	}
	out := map[string]family{}
	for _, mf := range gathered {
		f := family{typ: mf.GetType(), labels: map[string]bool{}}
		for _, s := range mf.GetMetric() {
			for _, l := range s.GetLabel() {
				f.labels[l.GetName()] = true
			}
		}
		out[mf.GetName()] = f
	}
	// Every family the metrics package declares must have been exercised
	// above, or a reference to it could not be checked.
	for _, name := range m.Names() {
		if _, ok := out[name]; !ok {
			t.Fatalf("family %s emitted no series: exercise it in registry()", name)
		}
	}
	return out
}

// resolve finds the family a sample name belongs to: the name itself, or
// a histogram's (or summary's) _bucket, _count and _sum series.
func resolve(fams map[string]family, name string) (family, bool) {
	if f, ok := fams[name]; ok {
		return f, true
	}
	for _, suffix := range []string{"_bucket", "_count", "_sum"} {
		base, ok := strings.CutSuffix(name, suffix)
		if !ok {
			continue
		}
		f, ok := fams[base]
		switch {
		case !ok:
		case f.typ == dto.MetricType_HISTOGRAM:
			if suffix == "_bucket" {
				labels := map[string]bool{"le": true}
				for l := range f.labels {
					labels[l] = true
				}
				f.labels = labels
			}
			return f, true
		case f.typ == dto.MetricType_SUMMARY && suffix != "_bucket":
			return f, true
		}
	}
	return family{}, false
}

// checkExpr reports every metric and label of a PromQL expression that the
// registry does not have.
func checkExpr(fams map[string]family, expr string) []string {
	refs, grouping, err := promqlRefs(expr)
	if err != nil {
		return []string{err.Error()}
	}
	if len(refs) == 0 {
		return []string{"no metric referenced"}
	}
	var problems []string
	known := map[string]bool{}
	for _, l := range targetLabels {
		known[l] = true
	}
	for _, r := range refs {
		if r.name == "" {
			problems = append(problems, "a metric selected by a regular expression cannot be checked")
			continue
		}
		f, ok := resolve(fams, r.name)
		if !ok {
			problems = append(problems, "unknown metric "+r.name)
			continue
		}
		for l := range f.labels {
			known[l] = true
		}
		for _, l := range r.labels {
			if !f.labels[l] && !slices.Contains(targetLabels, l) && l != "__name__" {
				problems = append(problems, fmt.Sprintf("metric %s has no label %s", r.name, l))
			}
		}
	}
	for _, l := range grouping {
		if !known[l] {
			problems = append(problems, "no metric of the expression has the label "+l+" it groups or matches by")
		}
	}
	return problems
}

// labelValuesRE is Grafana's label_values(selector, label) variable query.
var labelValuesRE = regexp.MustCompile(`^\s*label_values\((.*),\s*([a-zA-Z_][a-zA-Z0-9_]*)\s*\)\s*$`)

// checkVariableQuery checks a Grafana template variable's query.
func checkVariableQuery(fams map[string]family, q string) []string {
	m := labelValuesRE.FindStringSubmatch(q)
	if m == nil {
		return checkExpr(fams, q)
	}
	problems := checkExpr(fams, m[1])
	refs, _, err := promqlRefs(m[1])
	if err == nil && len(refs) == 1 {
		if f, ok := resolve(fams, refs[0].name); ok && !f.labels[m[2]] && !slices.Contains(targetLabels, m[2]) {
			problems = append(problems, fmt.Sprintf("metric %s has no label %s", refs[0].name, m[2]))
		}
	}
	return problems
}

// dashboardExprs walks the dashboard and returns every "expr" (panel
// targets, annotations) by its JSON path, and the template variables'
// queries.
func dashboardExprs(t *testing.T, raw []byte) (exprs, variables map[string]string) {
	t.Helper()
	var doc any
	dec := json.NewDecoder(bytes.NewReader(raw))
	dec.UseNumber()
	if err := dec.Decode(&doc); err != nil {
		t.Fatalf("%s: %v", dashboardFile, err)
	}
	exprs, variables = map[string]string{}, map[string]string{}
	var walk func(path string, v any)
	walk = func(path string, v any) {
		switch v := v.(type) {
		case map[string]any:
			for k, c := range v {
				if s, ok := c.(string); ok && k == "expr" {
					exprs[path+"."+k] = s
				}
				walk(path+"."+k, c)
			}
		case []any:
			for i, c := range v {
				walk(fmt.Sprintf("%s[%d]", path, i), c)
			}
		}
	}
	walk("$", doc)
	root := doc.(map[string]any)
	templating, _ := root["templating"].(map[string]any)
	list, _ := templating["list"].([]any)
	for i, v := range list {
		v := v.(map[string]any)
		if v["type"] != "query" {
			continue
		}
		switch q := v["query"].(type) {
		case string:
			variables[fmt.Sprintf("templating.list[%d]", i)] = q
		case map[string]any:
			variables[fmt.Sprintf("templating.list[%d]", i)], _ = q["query"].(string)
		}
	}
	return exprs, variables
}

// TestDashboardMetricsExist: every expression of the Grafana dashboard
// references metrics and labels the gateway exports.
func TestDashboardMetricsExist(t *testing.T) {
	fams := registry(t)
	raw, err := os.ReadFile(dashboardFile)
	if err != nil {
		t.Fatal(err)
	}
	exprs, variables := dashboardExprs(t, raw)
	if len(exprs) < 20 || len(variables) == 0 {
		t.Fatalf("found %d expressions and %d variables: the walk is broken", len(exprs), len(variables))
	}
	for _, set := range []struct {
		m     map[string]string
		check func(map[string]family, string) []string
	}{{exprs, checkExpr}, {variables, checkVariableQuery}} {
		for _, path := range sortedKeys(set.m) {
			for _, p := range set.check(fams, set.m[path]) {
				t.Errorf("%s %s: %s\n\t%s", dashboardFile, path, p, set.m[path])
			}
		}
	}
}

// TestDashboardImportable checks what Grafana's import needs: the
// datasource is an input, every panel and target uses it, panel ids are
// unique and every target has a refId.
func TestDashboardImportable(t *testing.T) {
	raw, err := os.ReadFile(dashboardFile)
	if err != nil {
		t.Fatal(err)
	}
	type datasource struct {
		Type string `json:"type"`
		UID  string `json:"uid"`
	}
	type panel struct {
		ID         int         `json:"id"`
		Type       string      `json:"type"`
		Title      string      `json:"title"`
		Datasource *datasource `json:"datasource"`
		Targets    []struct {
			RefID      string      `json:"refId"`
			Expr       string      `json:"expr"`
			Datasource *datasource `json:"datasource"`
		} `json:"targets"`
	}
	var d struct {
		Inputs []struct {
			Name     string `json:"name"`
			Type     string `json:"type"`
			PluginID string `json:"pluginId"`
		} `json:"__inputs"`
		UID           string  `json:"uid"`
		Title         string  `json:"title"`
		SchemaVersion int     `json:"schemaVersion"`
		ID            any     `json:"id"`
		Panels        []panel `json:"panels"`
	}
	if err := json.Unmarshal(raw, &d); err != nil {
		t.Fatal(err)
	}
	if len(d.Inputs) != 1 || d.Inputs[0].Name != "DS_PROMETHEUS" || d.Inputs[0].Type != "datasource" || d.Inputs[0].PluginID != "prometheus" {
		t.Fatalf("__inputs %+v: want one Prometheus datasource input DS_PROMETHEUS", d.Inputs)
	}
	if d.UID == "" || d.Title == "" || d.SchemaVersion < 36 || d.ID != nil {
		t.Fatalf("uid %q, title %q, schemaVersion %d, id %v: want a uid, a title, a Grafana 10 schema and a null id", d.UID, d.Title, d.SchemaVersion, d.ID)
	}
	ids := map[int]bool{}
	for _, p := range d.Panels {
		if ids[p.ID] {
			t.Errorf("panel id %d used twice", p.ID)
		}
		ids[p.ID] = true
		if p.Type == "row" {
			continue
		}
		if p.Datasource == nil || p.Datasource.UID != "${DS_PROMETHEUS}" || len(p.Targets) == 0 {
			t.Errorf("panel %q: datasource %+v, %d targets", p.Title, p.Datasource, len(p.Targets))
		}
		for _, tg := range p.Targets {
			if tg.RefID == "" || tg.Expr == "" || tg.Datasource == nil || tg.Datasource.UID != "${DS_PROMETHEUS}" {
				t.Errorf("panel %q: target %+v", p.Title, tg)
			}
		}
	}
}

// ruleFile is a Prometheus rules file (the subset Gatehouse ships: alerting
// rules), decoded strictly: an unknown or misspelt key is an error.
type ruleFile struct {
	Groups []ruleGroup `yaml:"groups"`
}

type ruleGroup struct {
	Name     string `yaml:"name"`
	Interval string `yaml:"interval"`
	Rules    []rule `yaml:"rules"`
}

type rule struct {
	Alert       string            `yaml:"alert"`
	Record      string            `yaml:"record"`
	Expr        string            `yaml:"expr"`
	For         string            `yaml:"for"`
	KeepFiring  string            `yaml:"keep_firing_for"`
	Labels      map[string]string `yaml:"labels"`
	Annotations map[string]string `yaml:"annotations"`
}

// promDuration is Prometheus's duration syntax (model.ParseDuration).
var promDuration = regexp.MustCompile(`^(([0-9]+)y)?(([0-9]+)w)?(([0-9]+)d)?(([0-9]+)h)?(([0-9]+)m)?(([0-9]+)s)?(([0-9]+)ms)?$`)

// TestAlertRules decodes the rules file strictly and checks every rule:
// metrics and labels exist, a for: duration, a severity, and a summary,
// a description and a runbook link to a section of docs/operations.md.
func TestAlertRules(t *testing.T) {
	fams := registry(t)
	raw, err := os.ReadFile(rulesFile)
	if err != nil {
		t.Fatal(err)
	}
	var f ruleFile
	dec := yaml.NewDecoder(bytes.NewReader(raw))
	dec.KnownFields(true)
	if err := dec.Decode(&f); err != nil {
		t.Fatalf("%s: %v", rulesFile, err)
	}
	ops, err := os.ReadFile(operationsDoc)
	if err != nil {
		t.Fatal(err)
	}
	sections := anchors(string(ops))
	want := []string{"GatehouseAuthFailureSpike", "GatehouseJWKSFetchFailing", "GatehouseJWKSStale", "GatehouseJWKSNotReady",
		"GatehouseKeyStoreErrors", "GatehouseHigh5xxRatio", "GatehouseReloadFailed"}
	seen := map[string]bool{}
	groups := map[string]bool{}
	for _, g := range f.Groups {
		if g.Name == "" || groups[g.Name] || len(g.Rules) == 0 {
			t.Errorf("group %q: empty, unnamed or named twice", g.Name)
		}
		groups[g.Name] = true
		for _, r := range g.Rules {
			name := r.Alert
			switch {
			case r.Alert == "" || r.Record != "":
				t.Errorf("group %s: a rule that is not an alert (alert %q, record %q)", g.Name, r.Alert, r.Record)
				continue
			case seen[name]:
				t.Errorf("alert %s defined twice", name)
			case !validLabelName(name) || !strings.HasPrefix(name, "Gatehouse"):
				t.Errorf("alert %s: not a valid name with the Gatehouse prefix", name)
			}
			seen[name] = true
			for _, p := range checkExpr(fams, r.Expr) {
				t.Errorf("%s alert %s: %s\n\t%s", rulesFile, name, p, r.Expr)
			}
			if m := promDuration.FindStringSubmatch(r.For); r.For == "" || r.For == "0s" || m == nil {
				t.Errorf("alert %s: for %q: want a Prometheus duration above zero", name, r.For)
			}
			if s := r.Labels["severity"]; s != "warning" && s != "critical" {
				t.Errorf("alert %s: severity %q: want warning or critical", name, s)
			}
			for _, k := range []string{"summary", "description", "runbook_url"} {
				if strings.TrimSpace(r.Annotations[k]) == "" {
					t.Errorf("alert %s: no %s annotation", name, k)
				}
			}
			anchor, ok := strings.CutPrefix(r.Annotations["runbook_url"], runbookPrefix)
			if !ok || !sections[anchor] {
				t.Errorf("alert %s: runbook_url %q: want %s<a heading of docs/operations.md>", name, r.Annotations["runbook_url"], runbookPrefix)
			}
			for k, v := range r.Annotations {
				if strings.Count(v, "{{") != strings.Count(v, "}}") {
					t.Errorf("alert %s: annotation %s has unbalanced template braces", name, k)
				}
			}
		}
	}
	for _, name := range want {
		if !seen[name] {
			t.Errorf("no alert %s", name)
		}
	}
}

// TestAlertUnitTestSeries: the input series of the promtool unit tests
// (prometheus/gatehouse-alerts_test.yaml, run with `promtool test rules`)
// are series the gateway exports, so those tests exercise the real names.
func TestAlertUnitTestSeries(t *testing.T) {
	fams := registry(t)
	raw, err := os.ReadFile("prometheus/gatehouse-alerts_test.yaml")
	if err != nil {
		t.Fatal(err)
	}
	var f struct {
		RuleFiles []string `yaml:"rule_files"`
		Tests     []struct {
			InputSeries []struct {
				Series string `yaml:"series"`
			} `yaml:"input_series"`
		} `yaml:"tests"`
	}
	if err := yaml.Unmarshal(raw, &f); err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(f.RuleFiles, []string{"gatehouse-alerts.yaml"}) || len(f.Tests) == 0 {
		t.Fatalf("rule_files %v, %d tests", f.RuleFiles, len(f.Tests))
	}
	for _, tc := range f.Tests {
		for _, in := range tc.InputSeries {
			for _, p := range checkExpr(fams, in.Series) {
				t.Errorf("input series %s: %s", in.Series, p)
			}
		}
	}
}

// TestRenamedMetricIsCaught: the check is not vacuous. A reference to a
// metric, a histogram series or a label the registry lacks is reported.
func TestRenamedMetricIsCaught(t *testing.T) {
	fams := registry(t)
	for _, tc := range []struct {
		expr string
		ok   bool
	}{
		{`sum by (route) (rate(gatehouse_requests_total{job=~"$job", route=~"$route"}[$__rate_interval]))`, true},
		{`histogram_quantile(0.99, sum by (le) (rate(gatehouse_request_duration_seconds_bucket[5m])))`, true},
		{`rate(gatehouse_apikey_store_lookup_duration_seconds_sum[5m]) / rate(gatehouse_apikey_store_lookup_duration_seconds_count[5m])`, true},
		{`go_goroutines and process_open_fds`, true},
		{`rate(gatehouse_request_total[5m])`, false},                                          // renamed family
		{`rate(gatehouse_requests_total_bucket[5m])`, false},                                  // a counter has no buckets
		{`rate(gatehouse_jwt_cache_lookups_count[5m])`, false},                                // nor does it have _count
		{`sum by (le) (rate(gatehouse_requests_total{le="1"}[5m]))`, false},                   // le only on buckets
		{`rate(gatehouse_requests_total{path="/x"}[5m])`, false},                              // renamed label
		{`sum by (path) (rate(gatehouse_requests_total[5m]))`, false},                         // grouping label
		{`gatehouse_jwks_ready * on (provider, store) group_left gatehouse_jwks_keys`, false}, // matching label
		{`sum(rate(gatehouse_jwks_fetches_total{result="failure"}[5m]))`, true},
		{`{__name__="gatehouse_requests_total"}`, true},
		{`{__name__="gatehouse_no_such"}`, false},
		{`sum(rate(x[5m]))`, false},
	} {
		problems := checkExpr(fams, tc.expr)
		if (len(problems) == 0) != tc.ok {
			t.Errorf("%s: problems %q, want ok=%v", tc.expr, problems, tc.ok)
		}
	}
}

// TestPromQLRefs pins the tokenizer down: metric names are found, and
// functions, aggregations, keywords, label names, strings, durations,
// numbers and Grafana variables are not taken for metrics.
func TestPromQLRefs(t *testing.T) {
	for _, tc := range []struct {
		expr     string
		metrics  string // "name{l1,l2} name2"
		grouping string
	}{
		{`up`, "up", ""},
		{`rate(foo_total[5m])`, "foo_total", ""},
		{`sum by (route, le) (rate(a_bucket{route=~"$route", job="x"}[$__rate_interval]))`, "a_bucket{route,job}", "route le"},
		{`sum without (instance) (b) / ignoring (x) group_left (y) c`, "b c", "instance x y"},
		{`a > bool 5 and on (p) b unless c or d`, "a b c d", "p"},
		{`a offset 5m + b @ start() - c @ 1609746000 offset -1h30m`, "a b c", ""},
		{`topk(5, sum by (r) (x)) > 1e-3 and y > 0x1F and z < Inf and w != NaN`, "x y z w", "r"},
		{`count_values("version", a) + quantile(0.5, b) + limitk(2, c)`, "a b c", ""},
		{`label_replace(a, "dst", "$1", "src", "(.*)")`, "a", ""},
		{`max_over_time(a[1h:5m]) - absent(b{c!="d", e!~"f\"g"})`, "a b{c,e}", ""},
		{"a # a comment with fake_metric\n + b", "a b", ""},
		{`time() - max(gatehouse_x)`, "gatehouse_x", ""},
		{`{__name__=~"job:.*"}`, "{__name__}", ""},
		{`sum by (route) (x) > 5 * sum by (route) (x offset 1h) + 1`, "x x", "route route"},
		{`{"gatehouse_x", job="a"}`, "gatehouse_x{job}", ""},
		{`ns:recorded:rate5m`, "ns:recorded:rate5m", ""},
	} {
		refs, grouping, err := promqlRefs(tc.expr)
		if err != nil {
			t.Errorf("%s: %v", tc.expr, err)
			continue
		}
		var got []string
		for _, r := range refs {
			s := r.name
			if len(r.labels) > 0 {
				s += "{" + strings.Join(r.labels, ",") + "}"
			}
			got = append(got, s)
		}
		if g := strings.Join(got, " "); g != tc.metrics {
			t.Errorf("%s: metrics %q, want %q", tc.expr, g, tc.metrics)
		}
		if g := strings.Join(grouping, " "); g != tc.grouping {
			t.Errorf("%s: grouping %q, want %q", tc.expr, g, tc.grouping)
		}
	}
	for _, bad := range []string{`rate(a[5m]`, `a{b="c"`, `"unterminated`, `a)`, `a[5m`} {
		if _, _, err := promqlRefs(bad); err == nil {
			t.Errorf("%s: no error", bad)
		}
	}
}

func sortedKeys(m map[string]string) []string {
	out := make([]string, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	sort.Strings(out)
	return out
}

func validLabelName(s string) bool {
	for i, r := range s {
		if !(r == '_' || r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || i > 0 && r >= '0' && r <= '9') {
			return false
		}
	}
	return s != ""
}

// anchors lists the GitHub anchors of a Markdown page's headings (outside
// code blocks), as docs tests in internal/config compute them.
func anchors(page string) map[string]bool {
	out := map[string]bool{}
	inCode := false
	for _, line := range strings.Split(page, "\n") {
		if strings.HasPrefix(strings.TrimSpace(line), "```") {
			inCode = !inCode
			continue
		}
		if inCode || !strings.HasPrefix(line, "#") {
			continue
		}
		var b strings.Builder
		for _, r := range strings.ToLower(strings.TrimSpace(strings.ReplaceAll(strings.TrimLeft(line, "#"), "`", ""))) {
			switch {
			case r == ' ':
				b.WriteByte('-')
			case r == '-' || r == '_' || r >= 'a' && r <= 'z' || r >= '0' && r <= '9' || r > 127 && unicode.IsLetter(r):
				b.WriteRune(r)
			}
		}
		out[b.String()] = true
	}
	return out
}
