package ssf

import (
	"context"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"mime"
	"net/http"
	"slices"
	"strings"
	"time"

	jose "github.com/go-jose/go-jose/v4"

	"github.com/gatehouse/gatehouse/internal/audit"
	"github.com/gatehouse/gatehouse/internal/authn"
	"github.com/gatehouse/gatehouse/internal/endpoint"
	"github.com/gatehouse/gatehouse/internal/identity"
	"github.com/gatehouse/gatehouse/internal/keyset"
)

// Reason is the reason code of an ssf.event audit event (docs/audit.md).
type Reason string

// Reason codes.
const (
	ReasonSubjectRevoked       Reason = "ssf_subject_revoked"
	ReasonCacheInvalidated     Reason = "ssf_cache_invalidated"
	ReasonEventIgnored         Reason = "ssf_event_ignored"
	ReasonSubjectUnmapped      Reason = "ssf_subject_unmapped"
	ReasonAuthenticationFailed Reason = "ssf_authentication_failed"
	ReasonInvalidRequest       Reason = "ssf_invalid_request"
	ReasonInvalidKey           Reason = "ssf_invalid_key"
	ReasonInvalidIssuer        Reason = "ssf_invalid_issuer"
	ReasonInvalidAudience      Reason = "ssf_invalid_audience"
	ReasonReplayed             Reason = "ssf_replayed"
	ReasonUnavailable          Reason = "ssf_unavailable"
)

// Error codes of RFC 8935 §2.3, the err member of a refusal.
const (
	ErrCodeInvalidRequest       = "invalid_request"
	ErrCodeInvalidKey           = "invalid_key"
	ErrCodeInvalidIssuer        = "invalid_issuer"
	ErrCodeInvalidAudience      = "invalid_audience"
	ErrCodeAuthenticationFailed = "authentication_failed"
)

// Defaults.
const (
	DefaultMaxAge     = 24 * time.Hour
	DefaultClockSkew  = time.Minute
	DefaultReplaySize = 100000
	// maxCandidateKeys bounds the keys tried for one SET.
	maxCandidateKeys = 3
)

// KeySource answers a transmitter's verification keys for a kid ("" when
// the SET has none); *keyset.Set implements it. An error wrapping
// keyset.ErrUnavailable (or any error other than an unknown kid) is a
// 503: the keys could not be fetched.
type KeySource interface {
	Lookup(ctx context.Context, kid string) ([]jose.JSONWebKey, error)
}

// Actions is what events do to the gateway. The receiver calls it with the
// gateway's subject (mapped by the transmitter's Subjects).
type Actions interface {
	// RevokeSubject refuses the tokens of subject (of issuer; "" for any
	// issuer) issued before before, on every replica.
	RevokeSubject(ctx context.Context, issuer, subject string, before time.Time, reason string) error
	// InvalidateSubject drops cached verifications of the subject's
	// tokens, here.
	InvalidateSubject(issuer, subject string)
}

// Subjects maps a transmitter's subject identifiers to the gateway's.
type Subjects struct {
	// Formats accepted; default iss_sub only. An event whose subject has
	// another format is accepted and not acted on (ssf_subject_unmapped).
	Formats []string
	// Issuers an iss_sub subject may name; default the transmitter's
	// issuer.
	Issuers []string
	// TokenIssuer is the issuer of the tokens the revocations name: for
	// iss_sub, default the subject's iss; for email and opaque, default
	// "" (tokens of any issuer).
	TokenIssuer string
}

// Transmitter is one configured SSF transmitter.
type Transmitter struct {
	// Name identifies it in audit events and logs.
	Name string
	// Issuer is the SETs' required iss.
	Issuer string
	// Keys verify its SETs.
	Keys KeySource
	// Audience: a SET's aud must contain one of these.
	Audience []string
	// PushToken is the bearer token it pushes with (compared in constant
	// time).
	PushToken string
	Subjects  Subjects
	// Replay remembers the jtis received. Default: a new cache of
	// Config.ReplaySize entries (a receiver of the next configuration
	// should be given the same one).
	Replay *ReplayCache

	token [sha256.Size]byte
}

// Config configures a Receiver.
type Config struct {
	// Path is where SETs are pushed.
	Path         string
	Transmitters []*Transmitter
	Actions      Actions
	// Audit receives one ssf.event per pushed SET. nil drops them.
	Audit audit.Logger
	// MaxAge refuses SETs whose iat is older. Default DefaultMaxAge.
	MaxAge time.Duration
	// ClockSkew tolerates an iat this far in the future. Default
	// DefaultClockSkew.
	ClockSkew time.Duration
	// ReplaySize bounds each transmitter's jti cache. Default
	// DefaultReplaySize.
	ReplaySize int
	Now        func() time.Time
}

// Receiver serves the push endpoint (RFC 8935).
type Receiver struct {
	cfg Config
}

var _ endpoint.Provider = (*Receiver)(nil)

// New validates cfg and returns a receiver.
func New(cfg Config) (*Receiver, error) {
	if cfg.MaxAge <= 0 {
		cfg.MaxAge = DefaultMaxAge
	}
	if cfg.ClockSkew <= 0 {
		cfg.ClockSkew = DefaultClockSkew
	}
	if cfg.ReplaySize <= 0 {
		cfg.ReplaySize = DefaultReplaySize
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	if cfg.Actions == nil {
		return nil, errors.New("ssf: no actions")
	}
	if len(cfg.Transmitters) == 0 {
		return nil, errors.New("ssf: no transmitters")
	}
	for _, t := range cfg.Transmitters {
		switch {
		case t.Issuer == "" || t.Keys == nil || len(t.Audience) == 0:
			return nil, fmt.Errorf("ssf: transmitter %s: issuer, keys and audience are required", t.Name)
		case len(t.PushToken) < 16:
			return nil, fmt.Errorf("ssf: transmitter %s: the push token must be at least 16 bytes", t.Name)
		}
		if len(t.Subjects.Formats) == 0 {
			t.Subjects.Formats = []string{"iss_sub"}
		}
		if len(t.Subjects.Issuers) == 0 {
			t.Subjects.Issuers = []string{t.Issuer}
		}
		if t.Replay == nil {
			t.Replay = NewReplayCache(cfg.ReplaySize)
		}
		t.token = sha256.Sum256([]byte(t.PushToken))
	}
	return &Receiver{cfg: cfg}, nil
}

// Endpoints implements endpoint.Provider: the push endpoint, public (it
// authenticates transmitters itself).
func (r *Receiver) Endpoints() []endpoint.Endpoint {
	return []endpoint.Endpoint{{Name: "ssf_events", Path: r.cfg.Path, Methods: []string{http.MethodPost},
		Public: true, Handler: endpoint.HandlerFunc(r.ServeEndpoint)}}
}

// refusal is an RFC 8935 error answer.
type refusal struct {
	status      int
	code        string
	description string
	reason      Reason
}

// ServeEndpoint receives one pushed SET: 202 when it was verified and
// acted on, 400 (401 for the push token) with an RFC 8935 error body, 503
// through the pipeline when its keys or the revocation list's store cannot
// be reached (the transmitter retries).
func (r *Receiver) ServeEndpoint(w http.ResponseWriter, req *http.Request, _ *identity.Identity) error {
	now := r.cfg.Now()
	ev := &audit.Event{SchemaVersion: audit.SchemaVersion, Time: now, Type: audit.TypeSharedSignal, HTTPMethod: req.Method, Path: req.URL.Path}
	t := r.transmitter(req)
	if t == nil {
		w.Header().Set("WWW-Authenticate", `Bearer realm="gatehouse"`)
		return r.refuse(w, ev, &refusal{http.StatusUnauthorized, ErrCodeAuthenticationFailed, "The push is not authorized.", ReasonAuthenticationFailed})
	}
	ev.Provider = t.Name
	set, ref, err := r.receive(req, t, now)
	if err != nil {
		ev.Outcome, ev.Reason = audit.OutcomeError, string(ReasonUnavailable)
		var tooBig *http.MaxBytesError
		if errors.As(err, &tooBig) {
			ev.Outcome, ev.Reason = audit.OutcomeDeny, string(ReasonInvalidRequest)
		}
		r.log(ev)
		return err
	}
	if ref != nil {
		return r.refuse(w, ev, ref)
	}
	ev.Issuer, ev.CredentialID, ev.SignalEvent = set.Issuer, set.JTI, set.EventType
	reason, err := r.act(req.Context(), t, set, now, ev)
	if err != nil {
		ev.Outcome, ev.Reason = audit.OutcomeError, string(ReasonUnavailable)
		r.log(ev)
		return &authn.UnavailableError{Method: "ssf", Reason: authn.Reason(ReasonUnavailable), Provider: t.Name, Err: err}
	}
	t.Replay.add(set.JTI, set.IssuedAt.Add(r.cfg.MaxAge+r.cfg.ClockSkew))
	ev.Outcome, ev.Reason = audit.OutcomeAllow, string(reason)
	r.log(ev)
	w.WriteHeader(http.StatusAccepted)
	return nil
}

// transmitter finds the transmitter whose push token the request
// carries, comparing with every one in constant time.
func (r *Receiver) transmitter(req *http.Request) *Transmitter {
	auth := req.Header.Values("Authorization")
	if len(auth) != 1 {
		return nil
	}
	scheme, token, ok := strings.Cut(auth[0], " ")
	if !ok || !strings.EqualFold(scheme, "Bearer") || token == "" {
		return nil
	}
	sum := sha256.Sum256([]byte(token))
	var found *Transmitter
	for _, t := range r.cfg.Transmitters {
		if subtle.ConstantTimeCompare(sum[:], t.token[:]) == 1 && found == nil {
			found = t
		}
	}
	return found
}

// receive reads and verifies the SET. A refusal is the client's fault; an
// error means the keys could not be fetched.
func (r *Receiver) receive(req *http.Request, t *Transmitter, now time.Time) (*SET, *refusal, error) {
	bad := func(reason Reason, code, desc string) (*SET, *refusal, error) {
		return nil, &refusal{http.StatusBadRequest, code, desc, reason}, nil
	}
	mt, _, err := mime.ParseMediaType(req.Header.Get("Content-Type"))
	if err != nil || mt != MediaType {
		return bad(ReasonInvalidRequest, ErrCodeInvalidRequest, "The Content-Type must be "+MediaType+".")
	}
	body, err := io.ReadAll(io.LimitReader(req.Body, MaxSETBytes+1))
	if err != nil {
		var tooBig *http.MaxBytesError
		if errors.As(err, &tooBig) {
			return nil, nil, err
		}
		return bad(ReasonInvalidRequest, ErrCodeInvalidRequest, "The body could not be read.")
	}
	jws, err := ParseSET([]byte(strings.TrimSpace(string(body))))
	if err != nil {
		return bad(ReasonInvalidRequest, ErrCodeInvalidRequest, "The body is not a signed SET.")
	}
	payload, err := verify(req.Context(), jws, t.Keys)
	switch {
	case errors.Is(err, errKeysUnavailable):
		return nil, nil, &authn.UnavailableError{Method: "ssf", Reason: authn.Reason(ReasonUnavailable), Provider: t.Name, Err: err}
	case err != nil:
		return bad(ReasonInvalidKey, ErrCodeInvalidKey, "The SET's signature does not verify with the transmitter's keys.")
	}
	set, err := DecodeClaims(payload, now)
	if err != nil {
		return bad(ReasonInvalidRequest, ErrCodeInvalidRequest, "The SET's claims are invalid.")
	}
	switch {
	case set.Issuer != t.Issuer:
		return bad(ReasonInvalidIssuer, ErrCodeInvalidIssuer, "The SET's issuer is not this transmitter's.")
	case !slices.ContainsFunc(set.Audience, func(a string) bool { return slices.Contains(t.Audience, a) }):
		return bad(ReasonInvalidAudience, ErrCodeInvalidAudience, "The SET is not addressed to this receiver.")
	case set.IssuedAt.After(now.Add(r.cfg.ClockSkew)):
		return bad(ReasonInvalidRequest, ErrCodeInvalidRequest, "The SET's iat is in the future.")
	case set.IssuedAt.Before(now.Add(-r.cfg.MaxAge)):
		return bad(ReasonInvalidRequest, ErrCodeInvalidRequest, "The SET is too old.")
	case t.Replay.seenAt(set.JTI, now):
		return bad(ReasonReplayed, ErrCodeInvalidRequest, "The SET's jti was already received.")
	}
	return set, nil, nil
}

// ErrSubjectRefused is wrapped by an Actions error that refuses the
// subject itself (too long for the revocation list, say): the event is
// then accepted and not acted on (ssf_subject_unmapped), never retried.
var ErrSubjectRefused = errors.New("ssf: the subject cannot be acted on")

var errKeysUnavailable = errors.New("ssf: the transmitter's keys are unavailable")

// verify checks the signature with the transmitter's keys for the SET's
// kid and returns the payload.
func verify(ctx context.Context, jws *jose.JSONWebSignature, keys KeySource) ([]byte, error) {
	h := jws.Signatures[0].Header
	cands, err := keys.Lookup(ctx, h.KeyID)
	if err != nil {
		if isUnknownKID(err) {
			return nil, fmt.Errorf("ssf: %w", err)
		}
		return nil, fmt.Errorf("%w: %v", errKeysUnavailable, err)
	}
	tried := 0
	for i := range cands {
		k := &cands[i]
		if h.KeyID != "" && k.KeyID != "" && k.KeyID != h.KeyID {
			continue
		}
		if k.Algorithm != "" && k.Algorithm != h.Algorithm {
			continue
		}
		if _, symmetric := k.Key.([]byte); symmetric || !k.IsPublic() {
			continue
		}
		if tried == maxCandidateKeys {
			break
		}
		tried++
		if payload, err := jws.Verify(k.Key); err == nil {
			return payload, nil
		}
	}
	return nil, errors.New("ssf: no key verifies the signature")
}

// act applies the event and returns the reason to record.
func (r *Receiver) act(ctx context.Context, t *Transmitter, set *SET, now time.Time, ev *audit.Event) (Reason, error) {
	switch set.EventType {
	case EventSessionRevoked, EventCredentialChange, EventTokenClaimsChange:
	default:
		return ReasonEventIgnored, nil
	}
	issuer, subject, ok := t.mapSubject(set.Subject)
	if !ok {
		return ReasonSubjectUnmapped, nil
	}
	ev.Subject = subject
	if issuer != "" {
		ev.Issuer = issuer
	}
	if set.EventType == EventTokenClaimsChange {
		r.cfg.Actions.InvalidateSubject(issuer, subject)
		return ReasonCacheInvalidated, nil
	}
	before := set.EventTimestamp
	if before.IsZero() {
		before = set.IssuedAt
	}
	if before.After(now) {
		// A transmitter's clock ahead of ours must not block tokens
		// issued after now.
		before = now
	}
	reason := fmt.Sprintf("ssf %s: %s", t.Name, set.EventType[strings.LastIndexByte(set.EventType, '/')+1:])
	if err := r.cfg.Actions.RevokeSubject(ctx, issuer, subject, before, reason); err != nil {
		if errors.Is(err, ErrSubjectRefused) {
			return ReasonSubjectUnmapped, nil
		}
		return "", err
	}
	return ReasonSubjectRevoked, nil
}

// mapSubject maps a subject identifier to the issuer and subject of the
// gateway's tokens.
func (t *Transmitter) mapSubject(s Subject) (issuer, subject string, ok bool) {
	if s.Format == "" || !slices.Contains(t.Subjects.Formats, s.Format) {
		return "", "", false
	}
	switch s.Format {
	case "iss_sub":
		if !slices.Contains(t.Subjects.Issuers, s.Issuer) {
			return "", "", false
		}
		issuer = s.Issuer
		if t.Subjects.TokenIssuer != "" {
			issuer = t.Subjects.TokenIssuer
		}
		return issuer, s.Sub, true
	case "email":
		return t.Subjects.TokenIssuer, s.Email, true
	case "opaque":
		return t.Subjects.TokenIssuer, s.ID, true
	}
	return "", "", false
}

func (r *Receiver) refuse(w http.ResponseWriter, ev *audit.Event, ref *refusal) error {
	ev.Outcome, ev.Reason = audit.OutcomeDeny, string(ref.reason)
	r.log(ev)
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Cache-Control", "no-store")
	w.WriteHeader(ref.status)
	b, _ := json.Marshal(struct {
		Err         string `json:"err"`
		Description string `json:"description"`
	}{ref.code, ref.description})
	_, _ = w.Write(b)
	return nil
}

func (r *Receiver) log(ev *audit.Event) {
	if r.cfg.Audit != nil {
		r.cfg.Audit.Log(ev)
	}
}

func isUnknownKID(err error) bool { return errors.Is(err, keyset.ErrUnknownKID) }
