package config

import (
	"crypto/tls"
	"crypto/x509"
	"os"
	"time"
)

// Redis is the connection to the Redis deployment shared by the gateway's
// replicas (rate limits, brute-force counters). Empty addresses mean no
// Redis: features that can use it stay local to each replica.
type Redis struct {
	// Addresses are host:port of the Redis node, of the cluster's seed
	// nodes (mode cluster) or of the Sentinels (mode sentinel). Default:
	// none (no Redis).
	Addresses []string `yaml:"addresses" desc:"host:port of the Redis server (standalone), of some cluster nodes (cluster) or of the Sentinels (sentinel). Default: none, no Redis: limits stay local to each replica."`
	// Mode is standalone, cluster or sentinel. Default standalone.
	Mode string `yaml:"mode" enum:"standalone,cluster,sentinel" desc:"standalone (one server or a proxy), cluster (Redis Cluster; keys carry hash tags) or sentinel (failover through Sentinels, needs master_name). Default standalone."`
	// MasterName is the Sentinel master's name (mode sentinel).
	MasterName string `yaml:"master_name" desc:"Name of the master the Sentinels monitor. Required in mode sentinel, refused otherwise."`
	// Username is the ACL user (Redis 6+). Default: none (the default user).
	Username string `yaml:"username" desc:"ACL user name (Redis 6 or later). Default: none."`
	// Password authenticates to Redis; write it as ${ENV}. Never logged.
	Password string `yaml:"password" desc:"Password (AUTH). Write it as ${ENV}. Default: none. Never logged."`
	// SentinelUsername and SentinelPassword authenticate to the Sentinels.
	SentinelUsername string `yaml:"sentinel_username" desc:"ACL user name on the Sentinels (mode sentinel). Default: none."`
	// SentinelPassword authenticates to the Sentinels; write it as ${ENV}.
	SentinelPassword string `yaml:"sentinel_password" desc:"Password on the Sentinels (mode sentinel). Write it as ${ENV}. Default: none. Never logged."`
	// Database is the logical database (not in cluster mode). Default 0.
	Database int `yaml:"database" desc:"Logical database number, 0 to 15 on a default server; must be 0 in mode cluster. Default 0."`
	// KeyPrefix starts every key the gateway writes. Default "gatehouse:".
	KeyPrefix string `yaml:"key_prefix" desc:"Prefix of every key the gateway writes, so several gateways (or tests) can share one Redis. Default gatehouse:."`
	// TLS, when set, encrypts the connections (TLS 1.2 or later).
	TLS *RedisTLS `yaml:"tls" desc:"Connect over TLS (1.2 or later). Omit for plain TCP."`
	// Timeouts bound every call: Redis is never waited for longer.
	Timeouts RedisTimeouts `yaml:"timeouts" desc:"Deadlines of connecting and of every command."`
	// PoolSize is the number of connections per node. Default 0: go-redis's
	// default, 10 per CPU.
	PoolSize int `yaml:"pool_size" desc:"Connections per node. Default 0: 10 per CPU."`
	// Breaker stops calling a Redis that keeps failing.
	Breaker RedisBreaker `yaml:"breaker" desc:"Circuit breaker: after consecutive failures Redis is not called for a cool-down, and callers apply their fallback at once."`
}

// RedisTLS configures TLS towards Redis.
type RedisTLS struct {
	// CAFile is a PEM bundle of the CAs trusted for the server's
	// certificate. Default: the system pool.
	CAFile string `yaml:"ca_file" desc:"PEM CA bundle that signs the server's certificate. Default: the system roots."`
	// CertFile is a client certificate (mutual TLS); needs KeyFile.
	CertFile string `yaml:"cert_file" desc:"PEM client certificate for mutual TLS; needs key_file. Default: none."`
	// KeyFile is the client certificate's private key.
	KeyFile string `yaml:"key_file" desc:"PEM private key of cert_file. Default: none."`
	// ServerName is the name checked in the server's certificate. Default:
	// the host of the address.
	ServerName string `yaml:"server_name" desc:"Name the server certificate must hold. Default: the host part of the address."`
	// MinVersion is the lowest TLS version. Default 1.2.
	MinVersion string `yaml:"min_version" enum:"1.2,1.3" desc:"Lowest TLS version. Default 1.2."`
}

// RedisTimeouts are the deadlines of the Redis client.
type RedisTimeouts struct {
	// Dial bounds opening a connection. Default 2s.
	Dial Duration `yaml:"dial" desc:"Deadline for opening a connection (TCP and TLS). Default 2s. Must be > 0."`
	// Read bounds waiting for a reply. Default 500ms.
	Read Duration `yaml:"read" desc:"Deadline for a reply. Default 500ms. Must be > 0."`
	// Write bounds sending a command. Default 500ms.
	Write Duration `yaml:"write" desc:"Deadline for sending a command. Default 500ms. Must be > 0."`
	// Pool bounds waiting for a free pooled connection. Default 1s.
	Pool Duration `yaml:"pool" desc:"How long a call waits for a free connection of the pool. Default 1s. Must be > 0."`
}

// RedisBreaker configures the circuit breaker around Redis.
type RedisBreaker struct {
	// Failures is the number of consecutive failed calls that opens the
	// breaker. Default 5.
	Failures int `yaml:"failures" desc:"Consecutive failed calls that open the breaker. Default 5. Must be ≥ 1."`
	// CoolDown is how long the breaker stays open before one probe call
	// is let through. Default 5s.
	CoolDown Duration `yaml:"cool_down" desc:"How long the open breaker refuses calls before one probe is let through. Default 5s. Must be > 0."`
}

// DefaultRedis returns the redis block's defaults.
func DefaultRedis() Redis {
	return Redis{
		Mode:      "standalone",
		KeyPrefix: "gatehouse:",
		Timeouts: RedisTimeouts{
			Dial: Duration(2 * time.Second), Read: Duration(500 * time.Millisecond),
			Write: Duration(500 * time.Millisecond), Pool: Duration(time.Second),
		},
		Breaker: RedisBreaker{Failures: 5, CoolDown: Duration(5 * time.Second)},
	}
}

// Enabled reports whether a Redis is configured.
func (r Redis) Enabled() bool { return len(r.Addresses) > 0 }

func (t *RedisTLS) setDefaults() { t.MinVersion = "1.2" }

// validateRedis checks the redis block; an empty block (no addresses) is
// still checked, so a half-written block is reported rather than ignored.
func validateRedis(r Redis, add func(path, format string, args ...any)) {
	for i, a := range r.Addresses {
		if err := checkHostPort(a); err != nil {
			add("redis.addresses", "entry %d: %v", i, err)
		}
	}
	if !r.Enabled() && (r.MasterName != "" || r.Password != "" || r.Username != "" || r.TLS != nil) {
		add("redis.addresses", "is required when redis is configured")
	}
	switch r.Mode {
	case "sentinel":
		if r.MasterName == "" {
			add("redis.master_name", "is required in mode sentinel")
		}
	case "cluster":
		if r.Database != 0 {
			add("redis.database", "must be 0 in mode cluster (Redis Cluster has one database)")
		}
	}
	if r.Mode != "sentinel" {
		if r.MasterName != "" {
			add("redis.master_name", "is only used in mode sentinel")
		}
		if r.SentinelUsername != "" || r.SentinelPassword != "" {
			add("redis.mode", "sentinel_username and sentinel_password are only used in mode sentinel")
		}
	}
	if r.Mode == "standalone" && len(r.Addresses) > 1 {
		add("redis.addresses", "mode standalone takes one address (several nodes: set mode cluster or sentinel)")
	}
	if r.Database < 0 || r.Database > 1024 {
		add("redis.database", "must be between 0 and 1024, not %d", r.Database)
	}
	if r.KeyPrefix == "" {
		add("redis.key_prefix", "must not be empty: another application's keys could collide with the gateway's")
	} else if len(r.KeyPrefix) > 64 {
		add("redis.key_prefix", "must be at most 64 bytes")
	}
	if r.PoolSize < 0 {
		add("redis.pool_size", "must not be negative")
	}
	for _, d := range []struct {
		name string
		v    Duration
	}{{"dial", r.Timeouts.Dial}, {"read", r.Timeouts.Read}, {"write", r.Timeouts.Write}, {"pool", r.Timeouts.Pool}} {
		if d.v <= 0 {
			add("redis.timeouts."+d.name, "must be greater than 0: every Redis call needs a deadline")
		}
	}
	if r.Breaker.Failures < 1 {
		add("redis.breaker.failures", "must be at least 1")
	}
	if r.Breaker.CoolDown <= 0 {
		add("redis.breaker.cool_down", "must be greater than 0")
	}
	if t := r.TLS; t != nil {
		if (t.CertFile == "") != (t.KeyFile == "") {
			add("redis.tls", "cert_file and key_file go together")
		} else if t.CertFile != "" {
			if _, err := tls.LoadX509KeyPair(t.CertFile, t.KeyFile); err != nil {
				add("redis.tls", "cannot load client certificate and key: %v", err)
			}
		}
		if t.CAFile != "" {
			if pem, err := os.ReadFile(t.CAFile); err != nil {
				add("redis.tls.ca_file", "%v", err)
			} else if !x509.NewCertPool().AppendCertsFromPEM(pem) {
				add("redis.tls.ca_file", "holds no PEM certificate")
			}
		}
	}
}
