package config

import "time"

// Revocation configures the revocation list (docs/revocation.md): tokens
// revoked by jti, by hash, by subject, by client or by issuer and subject,
// through the admin API or the CLI, refused on every route after
// authentication. The list lives in the key store (api_keys.store), so
// replicas sharing a PostgreSQL store share it.
type Revocation struct {
	// Enabled turns the list on. Default false. When on, every
	// authenticated request is checked against the list (a verified-token
	// cache hit too), the process is not ready until the list is loaded,
	// and requests get 503 while it has never been loaded (fail closed).
	Enabled bool `yaml:"enabled" desc:"Check every authenticated request against the revocation list kept in api_keys.store (admin API /v1/revocations, gatehouse tokens revoke). Not ready, and 503, until the list is loaded. Default false."`
	// MaxTokenLifetime is the longest lifetime of any token the gateway
	// accepts: an entry expires this long after its cut-off, once every
	// token it can match has expired anyway. Default: the longest
	// identity_providers[].max_token_lifetime, or 24h.
	MaxTokenLifetime Duration `yaml:"max_token_lifetime" desc:"How long an entry is kept after its cut-off: the longest lifetime of any accepted token. Too short and a revoked token that is still valid works again. Default: the longest identity_providers[].max_token_lifetime, else 24h."`
	// PollInterval is how often the list is reloaded while the store's
	// change notifications are down (or a load failed): the bound on
	// propagation then. Default 1s.
	PollInterval Duration `yaml:"poll_interval" desc:"How often the list is reloaded from the store while change notifications are down or a load failed: the propagation bound then. Default 1s."`
	// ResyncInterval is how often the whole list is reloaded even while
	// notifications work (a safety net), and expired entries pruned.
	// Default 1m.
	ResyncInterval Duration `yaml:"resync_interval" desc:"How often the whole list is reloaded even while notifications work, and expired entries pruned. Default 1m."`
	// Feed chooses how other processes' changes reach this one: auto
	// (PostgreSQL LISTEN/NOTIFY with a postgres store, plus Redis pub/sub
	// when redis.addresses is set), postgres, redis, or none (poll every
	// poll_interval). Default auto.
	Feed string `yaml:"feed" enum:"auto,postgres,redis,none" desc:"How changes made by other gateway processes arrive: auto (PostgreSQL LISTEN/NOTIFY with a postgres store, plus Redis pub/sub when redis is configured), postgres, redis (pub/sub on <redis.key_prefix>revocations; for stores behind a pooler that cannot LISTEN), or none (poll every poll_interval). Every process writing to the store must publish where the others listen. Default auto."`
}

// RevocationFeeds reports which change feeds the revocation list uses
// (revocation.feed resolved against the store and the redis block).
// Neither with the embedded store under auto: one process owns it.
func (c *Config) RevocationFeeds() (postgres, redis bool) {
	pg := c.APIKeys.Store.Type == "postgres"
	switch c.Revocation.Feed {
	case "postgres":
		return pg, false
	case "redis":
		return false, c.Redis.Enabled()
	case "none":
		return false, false
	default:
		return pg, pg && c.Redis.Enabled()
	}
}

// RevocationLifetime is how long revocation entries are kept after their
// cut-off: revocation.max_token_lifetime, else the longest
// max_token_lifetime of the identity providers, else 24h.
func (c *Config) RevocationLifetime() time.Duration {
	if c.Revocation.MaxTokenLifetime > 0 {
		return c.Revocation.MaxTokenLifetime.Std()
	}
	var longest time.Duration
	for _, p := range c.IdentityProviders {
		longest = max(longest, p.MaxTokenLifetime.Std())
	}
	if longest == 0 {
		return DefaultMaxTokenLifetime
	}
	return longest
}
