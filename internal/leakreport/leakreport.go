// Package leakreport serves the gateway-owned endpoint that secret
// scanners report leaked API keys to (docs/revocation.md): each reported
// key that exists and is active is revoked at once and audited
// (apikey.key_leaked). The answer says, for each reported entry, whether it
// was revoked; every other entry (unknown, malformed, already revoked, a
// static key) is "not_found", so a report cannot tell them apart.
//
// Two body shapes are accepted: {"keys": ["gate_live_…", …]}, and the list
// GitHub's secret scanning partner program posts,
// [{"token": "…", "type": "…", "url": "…", "source": "…"}, …], which is
// answered in its own shape, [{"token_hash", "token_type", "label"}], with
// label true_positive for a revoked key and false_positive otherwise.
package leakreport

import (
	"bytes"
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strings"
	"time"

	"github.com/gatehouse/gatehouse/internal/apikey"
	"github.com/gatehouse/gatehouse/internal/audit"
	"github.com/gatehouse/gatehouse/internal/authn"
	"github.com/gatehouse/gatehouse/internal/endpoint"
	"github.com/gatehouse/gatehouse/internal/identity"
	"github.com/gatehouse/gatehouse/internal/reply"
)

// Reason is the reason code of an apikey.key_leaked audit event.
type Reason string

// ReasonKeyLeaked: a reported key was revoked.
const ReasonKeyLeaked Reason = "key_leaked"

// reasonUnavailable: the key store could not be reached (503).
const reasonUnavailable authn.Reason = "store_unavailable"

// Defaults and bounds.
const (
	DefaultMaxKeys         = 100
	DefaultSignatureHeader = "X-Gatehouse-Signature-256"
	// MaxBodyBytes bounds a report.
	MaxBodyBytes = 256 << 10
	// maxTokenBytes: longer entries are not keys of any format.
	maxTokenBytes = 512
	// MinSecretBytes is the shortest bearer or HMAC secret accepted.
	MinSecretBytes = 32
)

// Keys finds and revokes stored keys; *keymgmt.Service implements it. A
// lookup of a key that is not stored (or malformed) wraps
// apikey.ErrNotFound; other errors mean the store cannot be reached.
type Keys interface {
	LookupKey(ctx context.Context, plaintext string) (*apikey.Key, *apikey.Consumer, error)
	RevokeKey(ctx context.Context, keyID string) (*apikey.Key, error)
}

// Config configures the endpoint. At least one of BearerToken and
// HMACSecret is required; with both, a report must carry both.
type Config struct {
	Path string
	// BearerToken: reports carry Authorization: Bearer <token>.
	BearerToken string
	// HMACSecret: reports carry SignatureHeader: sha256=<hex HMAC-SHA-256
	// of the body>.
	HMACSecret      string
	SignatureHeader string
	// MaxKeys bounds the entries of one report. Default DefaultMaxKeys.
	MaxKeys int
	Keys    Keys
	Audit   audit.Logger
	Now     func() time.Time
}

// Handler serves leak reports.
type Handler struct {
	cfg   Config
	token [sha256.Size]byte
	// busy admits one report at a time: a second one concurrently gets
	// 429, so a flood of reports cannot tie up the key store.
	busy chan struct{}
}

var _ endpoint.Provider = (*Handler)(nil)

// New validates cfg.
func New(cfg Config) (*Handler, error) {
	switch {
	case cfg.Keys == nil:
		return nil, errors.New("leakreport: no key store")
	case cfg.BearerToken == "" && cfg.HMACSecret == "":
		return nil, errors.New("leakreport: a bearer token or an HMAC secret is required")
	case cfg.BearerToken != "" && len(cfg.BearerToken) < MinSecretBytes,
		cfg.HMACSecret != "" && len(cfg.HMACSecret) < MinSecretBytes:
		return nil, fmt.Errorf("leakreport: secrets must be at least %d bytes", MinSecretBytes)
	}
	if cfg.SignatureHeader == "" {
		cfg.SignatureHeader = DefaultSignatureHeader
	}
	if cfg.MaxKeys <= 0 {
		cfg.MaxKeys = DefaultMaxKeys
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	return &Handler{cfg: cfg, token: sha256.Sum256([]byte(cfg.BearerToken)), busy: make(chan struct{}, 1)}, nil
}

// Endpoints implements endpoint.Provider.
func (h *Handler) Endpoints() []endpoint.Endpoint {
	return []endpoint.Endpoint{{Name: "leak_reports", Path: h.cfg.Path, Methods: []string{http.MethodPost},
		Public: true, Handler: endpoint.HandlerFunc(h.ServeEndpoint)}}
}

// entry is one reported secret.
type entry struct {
	Token  string `json:"token"`
	Type   string `json:"type,omitempty"`
	URL    string `json:"url,omitempty"`
	Source string `json:"source,omitempty"`
}

// Result is the answer for one entry.
type Result struct {
	TokenHash string `json:"token_hash"`
	Status    string `json:"status"`
}

// GitHubResult is the answer for one entry of a GitHub-shaped report.
type GitHubResult struct {
	TokenHash string `json:"token_hash"`
	TokenType string `json:"token_type"`
	Label     string `json:"label"`
}

// Statuses of a Result.
const (
	StatusRevoked  = "revoked"
	StatusNotFound = "not_found"
)

var unauthenticated = &reply.RefusedError{Unauthenticated: true, Detail: "The leak report is not authenticated."}

// ServeEndpoint handles one report.
func (h *Handler) ServeEndpoint(w http.ResponseWriter, r *http.Request, _ *identity.Identity) error {
	body, err := io.ReadAll(io.LimitReader(r.Body, MaxBodyBytes+1))
	if err != nil {
		var tooBig *http.MaxBytesError
		if errors.As(err, &tooBig) {
			return err
		}
		return &reply.RefusedError{Detail: "The body could not be read."}
	}
	if len(body) > MaxBodyBytes {
		return &http.MaxBytesError{Limit: MaxBodyBytes}
	}
	// Authenticate before anything is parsed.
	if !h.authentic(r, body) {
		return unauthenticated
	}
	entries, github, err := h.decode(body)
	if err != nil {
		return &reply.RefusedError{Detail: err.Error()}
	}
	select {
	case h.busy <- struct{}{}:
		defer func() { <-h.busy }()
	default:
		return &reply.TooManyRequestsError{RetryAfter: time.Second}
	}
	revoked := make([]bool, len(entries))
	for i, e := range entries {
		if revoked[i], err = h.revoke(r.Context(), e); err != nil {
			return &authn.UnavailableError{Method: identity.MethodAPIKey, Reason: reasonUnavailable, Provider: "api_keys", Err: err}
		}
	}
	var out any
	if github {
		res := make([]GitHubResult, len(entries))
		for i, e := range entries {
			res[i] = GitHubResult{TokenHash: tokenHash(e.Token), TokenType: e.Type, Label: "false_positive"}
			if revoked[i] {
				res[i].Label = "true_positive"
			}
		}
		out = res
	} else {
		res := make([]Result, len(entries))
		for i, e := range entries {
			res[i] = Result{TokenHash: tokenHash(e.Token), Status: StatusNotFound}
			if revoked[i] {
				res[i].Status = StatusRevoked
			}
		}
		out = struct {
			Results []Result `json:"results"`
		}{res}
	}
	b, err := json.Marshal(out)
	if err != nil {
		return err
	}
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Cache-Control", "no-store")
	w.WriteHeader(http.StatusOK)
	_, _ = w.Write(b)
	return nil
}

// authentic checks the configured credentials in constant time.
func (h *Handler) authentic(r *http.Request, body []byte) bool {
	ok := true
	if h.cfg.BearerToken != "" {
		auth := r.Header.Values("Authorization")
		var got string
		if len(auth) == 1 {
			if scheme, tok, found := strings.Cut(auth[0], " "); found && strings.EqualFold(scheme, "Bearer") {
				got = tok
			}
		}
		sum := sha256.Sum256([]byte(got))
		ok = subtle.ConstantTimeCompare(sum[:], h.token[:]) == 1 && got != ""
	}
	if h.cfg.HMACSecret != "" {
		sig := r.Header.Values(h.cfg.SignatureHeader)
		var given []byte
		if len(sig) == 1 {
			if hexSig, found := strings.CutPrefix(sig[0], "sha256="); found {
				given, _ = hex.DecodeString(hexSig)
			}
		}
		m := hmac.New(sha256.New, []byte(h.cfg.HMACSecret))
		m.Write(body)
		ok = hmac.Equal(m.Sum(nil), given) && ok
	}
	return ok
}

// decode reads either body shape; github reports the partner-program list.
func (h *Handler) decode(body []byte) (entries []entry, github bool, err error) {
	trimmed := bytes.TrimSpace(body)
	dec := json.NewDecoder(bytes.NewReader(trimmed))
	if len(trimmed) > 0 && trimmed[0] == '[' {
		// GitHub's entries may grow members; only token and type are used.
		github = true
		err = dec.Decode(&entries)
	} else {
		dec.DisallowUnknownFields()
		var doc struct {
			Keys []string `json:"keys"`
		}
		if err = dec.Decode(&doc); err == nil {
			for _, k := range doc.Keys {
				entries = append(entries, entry{Token: k})
			}
		}
	}
	switch {
	case err != nil:
		return nil, false, errors.New(`The report must be {"keys": [...]} or a list of {"token", "type", "url", "source"} objects.`)
	case dec.More():
		return nil, false, errors.New("The report has trailing data.")
	case len(entries) == 0:
		return nil, false, errors.New("The report lists no keys.")
	case len(entries) > h.cfg.MaxKeys:
		return nil, false, fmt.Errorf("The report lists more than %d keys.", h.cfg.MaxKeys)
	}
	return entries, github, nil
}

// revoke revokes the key e reports when it is stored and active. An error
// means the store cannot be reached.
func (h *Handler) revoke(ctx context.Context, e entry) (bool, error) {
	if e.Token == "" || len(e.Token) > maxTokenBytes {
		return false, nil
	}
	k, c, err := h.cfg.Keys.LookupKey(ctx, e.Token)
	switch {
	case errors.Is(err, apikey.ErrNotFound):
		return false, nil
	case err != nil:
		return false, err
	case !k.Usable(h.cfg.Now()):
		return false, nil
	}
	if _, err := h.cfg.Keys.RevokeKey(ctx, k.ID); err != nil {
		if errors.Is(err, apikey.ErrNotFound) {
			return false, nil
		}
		return false, err
	}
	if h.cfg.Audit != nil {
		ev := &audit.Event{SchemaVersion: audit.SchemaVersion, Time: h.cfg.Now(), Type: audit.TypeKeyLeaked,
			Outcome: audit.OutcomeAllow, Reason: string(ReasonKeyLeaked), Provider: "api_keys",
			Subject: k.ConsumerID, CredentialID: k.ID}
		if c != nil {
			ev.ClientID = c.Name
		}
		h.cfg.Audit.Log(ev)
	}
	return true, nil
}

// tokenHash is the hex SHA-256 of a reported token, how the answer names
// it without repeating it.
func tokenHash(tok string) string {
	sum := sha256.Sum256([]byte(tok))
	return hex.EncodeToString(sum[:])
}
