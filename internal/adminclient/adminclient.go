// Package adminclient is a small typed client for Gatehouse's admin REST
// API (consumers and API keys), used by the gatehouse command line.
//
// The admin token is sent in the Authorization header of every request and
// never appears in an error this package returns.
package adminclient

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"github.com/gatehouse/gatehouse/internal/quota"
	"io"
	"mime"
	"net/http"
	"net/url"
	"strings"
	"time"
)

// maxResponseBytes bounds how much of an answer is read: admin answers are
// small, and a misdirected --admin URL must not exhaust memory.
const maxResponseBytes = 32 << 20

// Client calls the admin API at BaseURL (e.g. http://127.0.0.1:9901).
type Client struct {
	// BaseURL is the admin listener's scheme, host and port, optionally
	// with a path prefix. Required.
	BaseURL string
	// Token is the admin token, sent as "Authorization: Bearer <Token>".
	Token string
	// HTTP sends the requests. Default http.DefaultClient (no timeout: give
	// requests a context with a deadline, or set a client with Timeout).
	HTTP *http.Client
}

// Consumer owns API keys.
type Consumer struct {
	ID        string            `json:"id"`
	Name      string            `json:"name"`
	Groups    []string          `json:"groups,omitempty"`
	Tags      []string          `json:"tags,omitempty"`
	Metadata  map[string]string `json:"metadata,omitempty"`
	CreatedAt time.Time         `json:"created_at"`
}

// Key is an API key as the admin API shows it: never the secret itself.
type Key struct {
	ID            string     `json:"id"`
	ConsumerID    string     `json:"consumer_id"`
	Hint          string     `json:"hint"`
	Name          string     `json:"name,omitempty"`
	Scopes        []string   `json:"scopes,omitempty"`
	Routes        []string   `json:"routes,omitempty"`
	RateLimitTier string     `json:"rate_limit_tier,omitempty"`
	Status        string     `json:"status"`
	CreatedAt     time.Time  `json:"created_at"`
	ExpiresAt     *time.Time `json:"expires_at,omitempty"`
	RevokedAt     *time.Time `json:"revoked_at,omitempty"`
	RotatedTo     string     `json:"rotated_to,omitempty"`
	LastUsedAt    *time.Time `json:"last_used_at,omitempty"`
}

// LookedUpKey is the stored key a plaintext key is, with its consumer.
type LookedUpKey struct {
	Key      Key      `json:"key"`
	Consumer Consumer `json:"consumer"`
}

// NewConsumer is the body of CreateConsumer.
type NewConsumer struct {
	Name     string            `json:"name"`
	Groups   []string          `json:"groups,omitempty"`
	Tags     []string          `json:"tags,omitempty"`
	Metadata map[string]string `json:"metadata,omitempty"`
}

// NewKey is the body of CreateKey. ExpiresAt and ExpiresIn are
// alternatives; with neither the key does not expire.
type NewKey struct {
	Name          string     `json:"name,omitempty"`
	Scopes        []string   `json:"scopes,omitempty"`
	Routes        []string   `json:"routes,omitempty"`
	RateLimitTier string     `json:"rate_limit_tier,omitempty"`
	ExpiresAt     *time.Time `json:"expires_at,omitempty"`
	// ExpiresIn is a Go duration such as "720h".
	ExpiresIn string `json:"expires_in,omitempty"`
}

// Rotation is the body of RotateKey.
type Rotation struct {
	// Grace is how long the old key keeps working, a Go duration ("24h";
	// "0s" ends it at once). Empty: the server's api_keys.rotation_grace.
	Grace string `json:"grace,omitempty"`
}

// IssuedKey is a newly created key with its secret, which the server
// returns only this once.
type IssuedKey struct {
	Key    Key    `json:"key"`
	Secret string `json:"secret"`
}

// RotatedKey is the answer to RotateKey: the new key with its secret and
// the old key as it now is (expiring at the end of the grace period).
type RotatedKey struct {
	Key      Key    `json:"key"`
	Secret   string `json:"secret"`
	Previous Key    `json:"previous"`
}

// FieldError is one invalid field of a request.
type FieldError struct {
	Field   string `json:"field"`
	Message string `json:"message"`
}

// APIError is an error answer from the admin API (an RFC 9457 problem, or
// any other non-2xx answer, summarised).
type APIError struct {
	Status int
	Type   string
	Title  string
	Detail string
	Fields []FieldError
}

func (e *APIError) Error() string {
	var b strings.Builder
	fmt.Fprintf(&b, "adminclient: %d", e.Status)
	if e.Title != "" {
		b.WriteString(" " + e.Title)
	}
	if e.Detail != "" {
		b.WriteString(": " + e.Detail)
	}
	for _, f := range e.Fields {
		fmt.Fprintf(&b, "; %s: %s", f.Field, f.Message)
	}
	return b.String()
}

// CreateConsumer creates a consumer.
func (c *Client) CreateConsumer(ctx context.Context, nc NewConsumer) (*Consumer, error) {
	var out Consumer
	if err := c.do(ctx, http.MethodPost, "/v1/consumers", nil, nc, http.StatusCreated, &out); err != nil {
		return nil, err
	}
	return &out, nil
}

// ListConsumers lists every consumer.
func (c *Client) ListConsumers(ctx context.Context) ([]Consumer, error) {
	var out struct {
		Consumers []Consumer `json:"consumers"`
	}
	if err := c.do(ctx, http.MethodGet, "/v1/consumers", nil, nil, http.StatusOK, &out); err != nil {
		return nil, err
	}
	return out.Consumers, nil
}

// GetConsumer finds a consumer by id or name.
func (c *Client) GetConsumer(ctx context.Context, idOrName string) (*Consumer, error) {
	var out Consumer
	if err := c.do(ctx, http.MethodGet, "/v1/consumers/"+segment(idOrName), nil, nil, http.StatusOK, &out); err != nil {
		return nil, err
	}
	return &out, nil
}

// ConsumerUsage is a consumer's quota use.
type ConsumerUsage struct {
	Consumer string        `json:"consumer"`
	Name     string        `json:"name"`
	Quotas   []quota.Usage `json:"quotas"`
}

// GetConsumerUsage returns a consumer's quota use, by id or name.
func (c *Client) GetConsumerUsage(ctx context.Context, idOrName string) (*ConsumerUsage, error) {
	var out ConsumerUsage
	if err := c.do(ctx, http.MethodGet, "/v1/consumers/"+segment(idOrName)+"/usage", nil, nil, http.StatusOK, &out); err != nil {
		return nil, err
	}
	return &out, nil
}

// DeleteConsumer deletes a consumer, by id or name, with all its keys.
func (c *Client) DeleteConsumer(ctx context.Context, idOrName string) error {
	return c.do(ctx, http.MethodDelete, "/v1/consumers/"+segment(idOrName), nil, nil, http.StatusNoContent, nil)
}

// CreateKey issues a key to a consumer (by id or name). The secret in the
// answer is shown only this once.
func (c *Client) CreateKey(ctx context.Context, consumer string, nk NewKey) (*IssuedKey, error) {
	var out IssuedKey
	if err := c.do(ctx, http.MethodPost, "/v1/consumers/"+segment(consumer)+"/keys", nil, nk, http.StatusCreated, &out); err != nil {
		return nil, err
	}
	return &out, nil
}

// ListKeys lists the keys of a consumer (by id or name), or every key when
// consumer is "".
func (c *Client) ListKeys(ctx context.Context, consumer string) ([]Key, error) {
	var q url.Values
	if consumer != "" {
		q = url.Values{"consumer": {consumer}}
	}
	var out struct {
		Keys []Key `json:"keys"`
	}
	if err := c.do(ctx, http.MethodGet, "/v1/keys", q, nil, http.StatusOK, &out); err != nil {
		return nil, err
	}
	return out.Keys, nil
}

// GetKey returns a key by id.
func (c *Client) GetKey(ctx context.Context, id string) (*Key, error) {
	var out Key
	if err := c.do(ctx, http.MethodGet, "/v1/keys/"+segment(id), nil, nil, http.StatusOK, &out); err != nil {
		return nil, err
	}
	return &out, nil
}

// LookupKey asks which stored key plaintext is. The key travels in the
// request body. A malformed or unknown key is an *APIError with Status 404.
func (c *Client) LookupKey(ctx context.Context, plaintext string) (*LookedUpKey, error) {
	var out LookedUpKey
	if err := c.do(ctx, http.MethodPost, "/v1/key-lookup", nil, map[string]string{"key": plaintext}, http.StatusOK, &out); err != nil {
		return nil, err
	}
	return &out, nil
}

// RotateKey replaces a key with a new one; the old key keeps working for
// the grace period.
func (c *Client) RotateKey(ctx context.Context, id string, r Rotation) (*RotatedKey, error) {
	var out RotatedKey
	if err := c.do(ctx, http.MethodPost, "/v1/keys/"+segment(id)+"/rotate", nil, r, http.StatusCreated, &out); err != nil {
		return nil, err
	}
	return &out, nil
}

// RevokeKey stops a key at once.
func (c *Client) RevokeKey(ctx context.Context, id string) (*Key, error) {
	var out Key
	if err := c.do(ctx, http.MethodPost, "/v1/keys/"+segment(id)+"/revoke", nil, nil, http.StatusOK, &out); err != nil {
		return nil, err
	}
	return &out, nil
}

// segment escapes one path segment, so an id or name cannot change the
// route ("../", "?", "/").
func segment(s string) string { return url.PathEscape(s) }

// do sends one request and decodes a want-status answer into out (if not
// nil); any other status becomes an *APIError.
func (c *Client) do(ctx context.Context, method, path string, query url.Values, in any, want int, out any) error {
	base, err := url.Parse(c.BaseURL)
	if err != nil || (base.Scheme != "http" && base.Scheme != "https") || base.Host == "" {
		return fmt.Errorf("adminclient: invalid base URL %q: want http(s)://host:port", c.BaseURL)
	}
	u := strings.TrimSuffix(base.String(), "/") + path
	if len(query) > 0 {
		u += "?" + query.Encode()
	}
	var body io.Reader
	if in != nil {
		b, err := json.Marshal(in)
		if err != nil {
			return fmt.Errorf("adminclient: encode request: %w", err)
		}
		body = bytes.NewReader(b)
	}
	req, err := http.NewRequestWithContext(ctx, method, u, body)
	if err != nil {
		return fmt.Errorf("adminclient: %w", err)
	}
	if in != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	req.Header.Set("Accept", "application/json, application/problem+json")
	if c.Token != "" {
		req.Header.Set("Authorization", "Bearer "+c.Token)
	}
	hc := c.HTTP
	if hc == nil {
		hc = http.DefaultClient
	}
	res, err := hc.Do(req)
	if err != nil {
		// *url.Error names the method and URL, never the headers.
		return fmt.Errorf("adminclient: %w", err)
	}
	defer res.Body.Close()
	data, err := io.ReadAll(io.LimitReader(res.Body, maxResponseBytes))
	if err != nil {
		return fmt.Errorf("adminclient: %s %s: read answer: %w", method, path, err)
	}
	if res.StatusCode != want {
		if res.StatusCode >= 200 && res.StatusCode < 300 {
			return fmt.Errorf("adminclient: %s %s: unexpected status %d, want %d", method, path, res.StatusCode, want)
		}
		return problem(res, data)
	}
	if out == nil {
		return nil
	}
	if err := json.Unmarshal(data, out); err != nil {
		return fmt.Errorf("adminclient: %s %s: decode answer: %w", method, path, err)
	}
	return nil
}

// problem turns an error answer into an *APIError, from its problem+json
// body if it has one, else from the status and a short excerpt of the body.
func problem(res *http.Response, data []byte) *APIError {
	e := &APIError{Status: res.StatusCode}
	mt, _, _ := mime.ParseMediaType(res.Header.Get("Content-Type"))
	if mt == "application/problem+json" || mt == "application/json" {
		var p struct {
			Type   string       `json:"type"`
			Title  string       `json:"title"`
			Detail string       `json:"detail"`
			Errors []FieldError `json:"errors"`
		}
		if json.Unmarshal(data, &p) == nil && (p.Title != "" || p.Detail != "" || p.Type != "") {
			e.Type, e.Title, e.Detail, e.Fields = p.Type, p.Title, p.Detail, p.Errors
			if e.Title == "" {
				e.Title = http.StatusText(res.StatusCode)
			}
			return e
		}
	}
	e.Title = http.StatusText(res.StatusCode)
	if excerpt := strings.TrimSpace(string(data)); excerpt != "" && mt != "text/html" {
		const max = 200
		if len(excerpt) > max {
			excerpt = excerpt[:max] + "…"
		}
		e.Detail = excerpt
	}
	return e
}

// IsNotFound reports whether err is an admin API 404.
func IsNotFound(err error) bool {
	var ae *APIError
	return errors.As(err, &ae) && ae.Status == http.StatusNotFound
}
