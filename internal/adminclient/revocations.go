package adminclient

import (
	"context"
	"net/http"
	"time"
)

// Revocation is one entry of the revocation list.
type Revocation struct {
	ID        string     `json:"id"`
	Kind      string     `json:"kind"`
	Issuer    string     `json:"issuer,omitempty"`
	Value     string     `json:"value"`
	Before    *time.Time `json:"before,omitempty"`
	Reason    string     `json:"reason,omitempty"`
	CreatedAt time.Time  `json:"created_at"`
	ExpiresAt time.Time  `json:"expires_at"`
}

// NewRevocations is the body of Revoke: one entry per value. A token is
// revoked by its SHA-256 (Kind "token", Values hex), never sent itself.
type NewRevocations struct {
	Kind   string     `json:"kind"`
	Issuer string     `json:"issuer,omitempty"`
	Values []string   `json:"values"`
	Reason string     `json:"reason,omitempty"`
	Before *time.Time `json:"before,omitempty"`
	Until  *time.Time `json:"until,omitempty"`
}

// Revoke adds entries to the revocation list.
func (c *Client) Revoke(ctx context.Context, nr NewRevocations) ([]Revocation, error) {
	var out struct {
		Revocations []Revocation `json:"revocations"`
	}
	if err := c.do(ctx, http.MethodPost, "/v1/revocations", nil, nr, http.StatusCreated, &out); err != nil {
		return nil, err
	}
	return out.Revocations, nil
}

// ListRevocations returns the active entries, oldest first.
func (c *Client) ListRevocations(ctx context.Context) ([]Revocation, error) {
	var out struct {
		Revocations []Revocation `json:"revocations"`
	}
	if err := c.do(ctx, http.MethodGet, "/v1/revocations", nil, nil, http.StatusOK, &out); err != nil {
		return nil, err
	}
	return out.Revocations, nil
}

// Unrevoke removes an entry by id.
func (c *Client) Unrevoke(ctx context.Context, id string) error {
	return c.do(ctx, http.MethodDelete, "/v1/revocations/"+segment(id), nil, nil, http.StatusNoContent, nil)
}
