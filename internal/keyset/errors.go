package keyset

import "errors"

// Errors returned by Set.Lookup. Callers tell them apart with errors.Is:
// an unknown key id is the token's fault (401), unavailable keys are the
// identity provider's (503, fail closed).
var (
	// ErrUnknownKID means no key with the requested id exists, even after
	// the (rate-limited) refetch the lookup was allowed to make.
	ErrUnknownKID = errors.New("keyset: unknown key id")
	// ErrUnavailable means no usable keys: never fetched successfully, or
	// the last good keys are older than the configured maximum staleness.
	ErrUnavailable = errors.New("keyset: keys unavailable")
)
