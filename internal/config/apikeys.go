package config

// APIKeys configures API-key authentication: where consumers and hashed
// keys are stored, the key format and how keys are read from requests.
// Every setting except static takes effect at start: a reload keeps the
// open store and its cache (so keys cached before a store outage keep
// working through a reload during it), and warns if they changed.
type APIKeys struct {
	// Store is where consumers and key hashes live.
	Store KeyStore `yaml:"store" desc:"Where consumers and key hashes are stored."`
	// Prefix starts every key (e.g. gate_live_), so secret scanners and
	// humans recognise leaked keys. Default gate_live_.
	Prefix string `yaml:"prefix" desc:"Prefix of every key, for leak detection by secret scanners. Default gate_live_."`
	// Pepper, if set, keys the stored hashes with HMAC-SHA-256, so a stolen
	// database alone cannot be used to test keys. At least 32 bytes; give
	// it with ${ENV}. Changing it invalidates every key.
	Pepper string `yaml:"pepper" desc:"Server-side secret for HMAC-SHA-256 key hashes (at least 32 bytes, via ${ENV}); without it keys are stored as SHA-256. Changing it invalidates every key."`
	// Header carrying the key. Default X-API-Key.
	Header string `yaml:"header" desc:"Header carrying the key. Default X-API-Key."`
	// AuthorizationSchemes accepted in the Authorization header. Default [ApiKey].
	AuthorizationSchemes []string `yaml:"authorization_schemes" desc:"Authorization schemes that carry a key, e.g. [ApiKey, Bearer]. Default [ApiKey]."`
	// CacheTTL bounds how long a verified key is served from memory; it is
	// how long a revocation takes to reach other replicas without
	// PostgreSQL notifications. Default 30s.
	CacheTTL Duration `yaml:"cache_ttl" desc:"How long a verified key is cached; the bound on revocation delay across replicas without notifications. Default 30s."`
	// NegativeCacheTTL: unknown keys are remembered this long. Default 10s.
	NegativeCacheTTL Duration `yaml:"negative_cache_ttl" desc:"How long an unknown key is remembered, so floods do not reach the store. Default 10s."`
	// RotationGrace is how long the old key keeps working after a rotation. Default 24h.
	RotationGrace Duration `yaml:"rotation_grace" desc:"How long the old key keeps working after rotate. Default 24h; 0 ends it at once."`
	// LastUsedInterval is how often last-used times are written, batched. Default 10s.
	LastUsedInterval Duration `yaml:"last_used_interval" desc:"How often last-used times are written to the store, in one batch. Default 10s."`
	// LookupTimeout bounds each key lookup on the request path, whatever
	// the store. Default 2s. Security: a store that does not answer in time
	// fails the request closed (503); a longer value lets a hung store hold
	// requests and their connections that long.
	LookupTimeout Duration `yaml:"lookup_timeout" desc:"Deadline of one key lookup in the store on the request path; past it the request gets 503 (fail closed). Default 2s."`
	// MaxConcurrentLookups bounds the store lookups in flight (concurrent
	// requests for one key share one lookup). Default 64. A request whose
	// key is not cached and finds every slot taken gets 503 at once, so a
	// slow or partitioned store cannot pile up requests.
	MaxConcurrentLookups int `yaml:"max_concurrent_lookups" desc:"Store lookups in flight at once (concurrent requests for one key share one); over the bound an uncached key gets 503 at once instead of queueing. Default 64."`
	// Static keys declared here, as hashes.
	Static []StaticAPIKey `yaml:"static" desc:"Keys declared in the configuration as hashes (no key management needed)."`
}

// KeyStore selects the store.
type KeyStore struct {
	// Type is embedded (a single file, no server) or postgres (shared by
	// replicas). Default embedded.
	Type string `yaml:"type" enum:"embedded,postgres,static" desc:"embedded (one file, no server), postgres (several replicas), or static (only the keys under api_keys.static, no store at all). Default embedded."`
	// Path of the embedded store file. Default gatehouse-keys.db.
	Path string `yaml:"path" desc:"File of the embedded store. Default gatehouse-keys.db."`
	// DSN of the PostgreSQL database; use ${ENV} for the password.
	DSN string `yaml:"dsn" desc:"PostgreSQL connection string (postgres type); use ${ENV} for credentials."`
	// ListenDSN is the connection string of the LISTEN/NOTIFY connection
	// when DSN cannot carry it (a pooler in transaction mode, such as
	// PgBouncer, does not keep LISTEN). Default: DSN.
	ListenDSN string `yaml:"listen_dsn" desc:"postgres: connection string of the LISTEN/NOTIFY connection (key and revocation changes from other replicas), when dsn goes through a pooler in transaction mode that cannot LISTEN (PgBouncer). Default: dsn."`
	// Schema in PostgreSQL. Default gatehouse.
	Schema string `yaml:"schema" desc:"PostgreSQL schema. Default gatehouse."`
	// ConnectTimeout bounds opening one PostgreSQL connection. Default 5s;
	// a connect_timeout in the DSN wins.
	ConnectTimeout Duration `yaml:"connect_timeout" desc:"postgres: deadline for opening one connection (TCP, TLS, authentication); a connect_timeout in the DSN wins. Default 5s."`
	// AcquireTimeout bounds the wait for a pooled PostgreSQL connection.
	// Default 2s.
	AcquireTimeout Duration `yaml:"acquire_timeout" desc:"postgres: how long a call waits for a pooled connection (including opening one). Default 2s."`
	// StatementTimeout is PostgreSQL's statement_timeout for the store's
	// connections; each call also has a client-side deadline of
	// acquire_timeout + statement_timeout + 1s. Default 5s; a
	// statement_timeout in the DSN wins.
	StatementTimeout Duration `yaml:"statement_timeout" desc:"postgres: server statement_timeout of the store's connections; each call also has a client-side deadline of acquire_timeout + statement_timeout + 1s. Default 5s."`
}

// StaticAPIKey is a key declared in the configuration, as a hash: for
// setups that need a few fixed keys and no key management. Reloads apply
// changes to static keys.
type StaticAPIKey struct {
	// ID names the key in logs and audit events. Required, unique.
	ID string `yaml:"id" desc:"Key id shown in audit events. Required."`
	// Consumer is the owning consumer's name. Required.
	Consumer string `yaml:"consumer" desc:"Name of the consumer the key belongs to. Required."`
	// Hash is the key's lookup hash, "sha256:<hex>", as printed by
	// `gatehouse keys hash` (HMAC-SHA-256 when api_keys.pepper is set). Required.
	Hash string `yaml:"hash" desc:"sha256:<hex> lookup hash of the key, as printed by gatehouse keys hash (it follows api_keys.pepper). Required."`
	// Scopes granted to the key.
	Scopes []string `yaml:"scopes" desc:"Scopes granted to the key."`
	// Groups of the consumer.
	Groups []string `yaml:"groups" desc:"Groups of the consumer."`
	// Routes restricts the key to these route names or tags.
	Routes []string `yaml:"routes" desc:"Route names or tags the key is restricted to. Default: any route accepting api_key."`
}
