package adminclient

import (
	"context"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"reflect"
	"strings"
	"testing"
	"time"
)

const testToken = "gha_test-token-never-in-errors"

// canned serves one fixed answer and records the request it got.
type canned struct {
	status      int
	contentType string
	body        string

	method, path, query, auth, reqType string
	reqBody                            map[string]any
}

func (c *canned) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	c.method, c.path, c.query = r.Method, r.URL.EscapedPath(), r.URL.RawQuery
	c.auth, c.reqType = r.Header.Get("Authorization"), r.Header.Get("Content-Type")
	c.reqBody = nil
	if b, _ := io.ReadAll(r.Body); len(b) > 0 {
		_ = json.Unmarshal(b, &c.reqBody)
	}
	ct := c.contentType
	if ct == "" {
		ct = "application/json"
	}
	w.Header().Set("Content-Type", ct)
	w.WriteHeader(c.status)
	_, _ = io.WriteString(w, c.body)
}

func newClient(t *testing.T, h http.Handler) *Client {
	t.Helper()
	srv := httptest.NewServer(h)
	t.Cleanup(srv.Close)
	return &Client{BaseURL: srv.URL + "/", Token: testToken, HTTP: srv.Client()}
}

const keyJSON = `{"id":"k_1","consumer_id":"c_1","hint":"gate_live_…a1b2","name":"ci","scopes":["orders:read"],"routes":["orders"],"rate_limit_tier":"gold","status":"active","created_at":"2025-01-02T03:04:05Z","expires_at":"2025-02-01T03:04:05Z"}`

func TestRequestsAndAnswers(t *testing.T) {
	created := time.Date(2025, 1, 2, 3, 4, 5, 0, time.UTC)
	expires := time.Date(2025, 2, 1, 3, 4, 5, 0, time.UTC)
	wantKey := Key{ID: "k_1", ConsumerID: "c_1", Hint: "gate_live_…a1b2", Name: "ci", Scopes: []string{"orders:read"},
		Routes: []string{"orders"}, RateLimitTier: "gold", Status: "active", CreatedAt: created, ExpiresAt: &expires}
	wantConsumer := Consumer{ID: "c_1", Name: "acme", Groups: []string{"partners"}, Metadata: map[string]string{"tier": "gold"}, CreatedAt: created}
	consumerJSON := `{"id":"c_1","name":"acme","groups":["partners"],"metadata":{"tier":"gold"},"created_at":"2025-01-02T03:04:05Z"}`

	for _, tc := range []struct {
		name                 string
		status               int
		body                 string
		call                 func(context.Context, *Client) (any, error)
		wantMethod, wantPath string
		wantQuery            string
		wantReq              map[string]any
		want                 any
	}{
		{
			name: "create consumer", status: 201, body: consumerJSON,
			call: func(ctx context.Context, c *Client) (any, error) {
				return c.CreateConsumer(ctx, NewConsumer{Name: "acme", Groups: []string{"partners"}, Metadata: map[string]string{"tier": "gold"}})
			},
			wantMethod: "POST", wantPath: "/v1/consumers",
			wantReq: map[string]any{"name": "acme", "groups": []any{"partners"}, "metadata": map[string]any{"tier": "gold"}},
			want:    &wantConsumer,
		},
		{
			name: "list consumers", status: 200, body: `{"consumers":[` + consumerJSON + `]}`,
			call:       func(ctx context.Context, c *Client) (any, error) { return c.ListConsumers(ctx) },
			wantMethod: "GET", wantPath: "/v1/consumers",
			want: []Consumer{wantConsumer},
		},
		{
			name: "get consumer escapes the name", status: 200, body: consumerJSON,
			call:       func(ctx context.Context, c *Client) (any, error) { return c.GetConsumer(ctx, "a/../b c") },
			wantMethod: "GET", wantPath: "/v1/consumers/a%2F..%2Fb%20c",
			want: &wantConsumer,
		},
		{
			name: "delete consumer", status: 204,
			call:       func(ctx context.Context, c *Client) (any, error) { return nil, c.DeleteConsumer(ctx, "acme") },
			wantMethod: "DELETE", wantPath: "/v1/consumers/acme",
		},
		{
			name: "create key", status: 201, body: `{"key":` + keyJSON + `,"secret":"gate_live_s3cret"}`,
			call: func(ctx context.Context, c *Client) (any, error) {
				return c.CreateKey(ctx, "acme", NewKey{Name: "ci", Scopes: []string{"orders:read"}, ExpiresIn: "720h", RateLimitTier: "gold"})
			},
			wantMethod: "POST", wantPath: "/v1/consumers/acme/keys",
			wantReq: map[string]any{"name": "ci", "scopes": []any{"orders:read"}, "expires_in": "720h", "rate_limit_tier": "gold"},
			want:    &IssuedKey{Key: wantKey, Secret: "gate_live_s3cret"},
		},
		{
			name: "list keys of a consumer", status: 200, body: `{"keys":[` + keyJSON + `]}`,
			call:       func(ctx context.Context, c *Client) (any, error) { return c.ListKeys(ctx, "acme corp") },
			wantMethod: "GET", wantPath: "/v1/keys", wantQuery: "consumer=acme+corp",
			want: []Key{wantKey},
		},
		{
			name: "list all keys", status: 200, body: `{"keys":[]}`,
			call:       func(ctx context.Context, c *Client) (any, error) { return c.ListKeys(ctx, "") },
			wantMethod: "GET", wantPath: "/v1/keys",
			want: []Key{},
		},
		{
			name: "get key", status: 200, body: keyJSON,
			call:       func(ctx context.Context, c *Client) (any, error) { return c.GetKey(ctx, "k_1") },
			wantMethod: "GET", wantPath: "/v1/keys/k_1",
			want: &wantKey,
		},
		{
			name: "rotate key with zero grace", status: 201, body: `{"key":` + keyJSON + `,"secret":"gate_live_new","previous":` + keyJSON + `}`,
			call: func(ctx context.Context, c *Client) (any, error) {
				return c.RotateKey(ctx, "k_1", Rotation{Grace: "0s"})
			},
			wantMethod: "POST", wantPath: "/v1/keys/k_1/rotate",
			wantReq: map[string]any{"grace": "0s"},
			want:    &RotatedKey{Key: wantKey, Secret: "gate_live_new", Previous: wantKey},
		},
		{
			name: "revoke key", status: 200, body: keyJSON,
			call:       func(ctx context.Context, c *Client) (any, error) { return c.RevokeKey(ctx, "k_1") },
			wantMethod: "POST", wantPath: "/v1/keys/k_1/revoke",
			want: &wantKey,
		},
	} {
		t.Run(tc.name, func(t *testing.T) {
			h := &canned{status: tc.status, body: tc.body}
			c := newClient(t, h)
			got, err := tc.call(context.Background(), c)
			if err != nil {
				t.Fatal(err)
			}
			if h.method != tc.wantMethod || h.path != tc.wantPath || h.query != tc.wantQuery {
				t.Errorf("request %s %s?%s, want %s %s?%s", h.method, h.path, h.query, tc.wantMethod, tc.wantPath, tc.wantQuery)
			}
			if h.auth != "Bearer "+testToken {
				t.Errorf("Authorization = %q", h.auth)
			}
			if !reflect.DeepEqual(h.reqBody, tc.wantReq) {
				t.Errorf("request body = %v, want %v", h.reqBody, tc.wantReq)
			}
			if tc.wantReq != nil && h.reqType != "application/json" {
				t.Errorf("request Content-Type = %q", h.reqType)
			}
			if tc.want != nil && !reflect.DeepEqual(got, tc.want) {
				t.Errorf("answer = %+v\nwant     %+v", got, tc.want)
			}
		})
	}
}

func TestErrors(t *testing.T) {
	for _, tc := range []struct {
		name        string
		status      int
		contentType string
		body        string
		want        APIError
	}{
		{
			name: "problem with field errors", status: 422, contentType: "application/problem+json",
			body: `{"type":"urn:gatehouse:problem:invalid-request","title":"Invalid request","status":422,"detail":"2 invalid fields","errors":[{"field":"name","message":"required"},{"field":"expires_in","message":"not a duration"}]}`,
			want: APIError{Status: 422, Type: "urn:gatehouse:problem:invalid-request", Title: "Invalid request", Detail: "2 invalid fields",
				Fields: []FieldError{{"name", "required"}, {"expires_in", "not a duration"}}},
		},
		{
			name: "problem without title", status: 404, contentType: "application/problem+json",
			body: `{"type":"urn:x","detail":"no consumer acme"}`,
			want: APIError{Status: 404, Type: "urn:x", Title: "Not Found", Detail: "no consumer acme"},
		},
		{
			name: "plain text", status: 502, contentType: "text/plain; charset=utf-8", body: "bad gateway\n",
			want: APIError{Status: 502, Title: "Bad Gateway", Detail: "bad gateway"},
		},
		{
			name: "html is not shown", status: 404, contentType: "text/html", body: "<html>…</html>",
			want: APIError{Status: 404, Title: "Not Found"},
		},
		{
			name: "unauthorized", status: 401, contentType: "application/problem+json",
			body: `{"type":"urn:gatehouse:problem:unauthorized","title":"Unauthorized","status":401}`,
			want: APIError{Status: 401, Type: "urn:gatehouse:problem:unauthorized", Title: "Unauthorized"},
		},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c := newClient(t, &canned{status: tc.status, contentType: tc.contentType, body: tc.body})
			_, err := c.GetConsumer(context.Background(), "acme")
			var ae *APIError
			if !errors.As(err, &ae) {
				t.Fatalf("error %v (%T), want *APIError", err, err)
			}
			if !reflect.DeepEqual(*ae, tc.want) {
				t.Errorf("error = %+v\nwant    %+v", *ae, tc.want)
			}
			if strings.Contains(err.Error(), testToken) {
				t.Errorf("error mentions the token: %v", err)
			}
			if IsNotFound(err) != (tc.status == 404) {
				t.Errorf("IsNotFound = %v", IsNotFound(err))
			}
		})
	}
}

func TestTransportErrorsOmitToken(t *testing.T) {
	srv := httptest.NewServer(http.NotFoundHandler())
	url := srv.URL
	srv.Close() // nothing listens any more
	for _, c := range []*Client{
		{BaseURL: url, Token: testToken},
		{BaseURL: "ftp://example.com", Token: testToken},
		{BaseURL: "not a url", Token: testToken},
	} {
		_, err := c.ListKeys(context.Background(), "")
		if err == nil {
			t.Fatalf("%s: no error", c.BaseURL)
		}
		if strings.Contains(err.Error(), testToken) {
			t.Errorf("%s: error mentions the token: %v", c.BaseURL, err)
		}
	}
}

func TestUnexpectedSuccessStatus(t *testing.T) {
	c := newClient(t, &canned{status: 200, body: `{}`})
	if err := c.DeleteConsumer(context.Background(), "acme"); err == nil {
		t.Error("a 200 to DELETE was taken for a 204")
	}
}
