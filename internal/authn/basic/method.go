package basic

import (
	"context"
	"crypto/tls"
	"encoding/base64"
	"fmt"
	"net/http"
	"os"
	"runtime"
	"time"

	"github.com/gatehouse/gatehouse/internal/apikey"
	"github.com/gatehouse/gatehouse/internal/authn"
	"github.com/gatehouse/gatehouse/internal/authn/registry"
	"github.com/gatehouse/gatehouse/internal/config"
	"github.com/gatehouse/gatehouse/internal/resource"
)

// Options is routes[].authenticate.basic.
type Options struct {
	// UsersFile is the users file. Required.
	UsersFile string `yaml:"users_file" desc:"Path of the users file: lines name:HASH [roles=a,b] [groups=…] [scopes=…], HASH an argon2id PHC string or a bcrypt hash (gatehouse users hash/add write them). Plaintext, MD5 and SHA hashes are refused. Re-read on every configuration reload and when the file changes. Exactly one of users_file and users_store."`
	// UsersStore reads the users from the API-key store instead.
	UsersStore bool `yaml:"users_store" desc:"Read the users from the API-key store (api_keys.store, embedded or postgres; gatehouse users add --store writes them) instead of a file, re-read every reload_interval. Exactly one of users_file and users_store. Default false."`
	// ReloadInterval is how often the file is checked for changes.
	ReloadInterval config.Duration `yaml:"reload_interval" desc:"How often the users file is checked for a change (size, modification time, inode), or the users store re-read; 0 checks only on configuration reload. Default 5s."`
	// AllowPlainHTTP accepts Basic credentials on requests that did not
	// arrive over TLS. Default false. Security: the password crosses the
	// network in clear.
	AllowPlainHTTP bool `yaml:"allow_plain_http" desc:"Accept Basic credentials on a request that reached the gateway over plain HTTP (not TLS, and no trusted proxy's X-Forwarded-Proto: https). Default false: such a request is refused (basic_plain_http). Security: the password crosses the network in clear; only for a loopback or otherwise protected network."`
	// CacheTTL is how long a verified (user, password) pair is remembered.
	CacheTTL config.Duration `yaml:"cache_ttl" desc:"How long a verified user and password pair is remembered (under an HMAC with a per-process key, never the password), so a client sending the same password on every request pays argon2id once. 0 turns the cache off. A change of the users file empties it. Default 60s."`
	// CacheSize bounds the cache.
	CacheSize int `yaml:"cache_size" desc:"Most verified pairs remembered; when full, new pairs are verified every time until entries expire. Default 10000."`
	// MaxConcurrentVerifications bounds password hashing in progress.
	MaxConcurrentVerifications int `yaml:"max_concurrent_verifications" desc:"Password verifications (argon2id, bcrypt) running at once for the routes sharing this users file and limit; a request that finds no free slot within verification_wait is refused with 503 (verification_busy). Default: the number of CPUs. Each argon2id verification holds its memory (19 MiB at the default parameters)."`
	// VerificationWait is how long a request waits for a slot.
	VerificationWait config.Duration `yaml:"verification_wait" desc:"How long a request waits for a free verification slot before 503. Default 1s."`
}

// SetDefaults sets the defaults of the options block.
func (o *Options) SetDefaults() {
	o.ReloadInterval = config.Duration(5 * time.Second)
	o.CacheTTL = config.Duration(time.Minute)
	o.CacheSize = 10_000
	o.VerificationWait = config.Duration(time.Second)
}

// Challenge parameters: RFC 7617 §2.1, the only charset allowed.
const challengeParams = `charset="UTF-8"`

func init() {
	registry.Register(registry.Method{
		Name:            Name,
		Challenge:       "Basic",
		ChallengeParams: challengeParams,
		Options:         &Options{},
		Validate:        validate,
		Build:           build,
		UsesKeyStore: func(r *config.Route) bool {
			o, _ := r.Authenticate.Options(string(Name)).(*Options)
			return o != nil && o.UsersStore
		},
		Present: func(r *http.Request, value string, _ *config.Config) error {
			// explain --credential basic=user:password. A Basic client
			// must use HTTPS: the synthetic request is taken to have come
			// over TLS, so explain judges the credential, not a transport
			// the question did not name.
			r.Header.Set("Authorization", "Basic "+base64.StdEncoding.EncodeToString([]byte(value)))
			if r.TLS == nil {
				r.TLS = &tls.ConnectionState{}
			}
			return nil
		},
	})
}

func validate(m config.RouteMethod) config.Errors {
	o, _ := m.Options.(*Options)
	if o == nil || (o.UsersFile == "") == !o.UsersStore {
		return config.Errors{m.Errorf("basic.users_file", "the basic method needs exactly one of users_file and users_store")}
	}
	var errs config.Errors
	if o.UsersStore && m.Config.APIKeys.Store.Type == "static" {
		errs = append(errs, m.Errorf("basic.users_store", "api_keys.store.type is static: there is no store to keep users in (use embedded or postgres, or users_file)"))
	}
	if o.CacheTTL < 0 || o.CacheTTL.Std() > time.Hour {
		errs = append(errs, m.Errorf("basic.cache_ttl", "must be between 0 and 1h"))
	}
	if o.CacheSize < 0 || o.CacheSize > 1_000_000 {
		errs = append(errs, m.Errorf("basic.cache_size", "must be between 0 and 1000000"))
	}
	if o.MaxConcurrentVerifications < 0 || o.MaxConcurrentVerifications > 256 {
		errs = append(errs, m.Errorf("basic.max_concurrent_verifications", "must be between 1 and 256 (0: the number of CPUs)"))
	}
	if o.VerificationWait < 0 || o.VerificationWait.Std() > 30*time.Second {
		errs = append(errs, m.Errorf("basic.verification_wait", "must be between 0 and 30s"))
	}
	if o.ReloadInterval < 0 || (o.ReloadInterval > 0 && o.ReloadInterval.Std() < 100*time.Millisecond) {
		errs = append(errs, m.Errorf("basic.reload_interval", "must be 0 (off) or at least 100ms"))
	}
	return errs
}

func build(env registry.Env) (authn.Authenticator, error) {
	o, _ := env.Options.(*Options)
	if o == nil {
		return nil, fmt.Errorf("authn/basic: route %s: no basic options", env.Route.Name)
	}
	n := o.MaxConcurrentVerifications
	if n == 0 {
		n = runtime.NumCPU()
	}
	a := &Authenticator{allowHTTP: o.AllowPlainHTTP, origin: env.Origin, now: env.Now}
	if !env.Validating {
		// Make the dummy hash now, not on the first unknown user (whose
		// answer would then take twice as long).
		dummy()
	}
	if o.AllowPlainHTTP {
		env.Log.Warn("authn/basic: route accepts Basic credentials over plain HTTP: passwords cross the network in clear", "route", env.Route.Name)
	}
	if o.UsersStore {
		return buildStore(env, o, a, n)
	}
	if env.Resources == nil || env.Validating {
		// A throwaway plan (validate, explain, policy test): read the file
		// once, no watch. A file that is not there (validating on another
		// machine) makes the method "not evaluated"; one that is there
		// but refused (a plaintext password) is an error.
		src, err := OpenFile(o.UsersFile, 0, 0, 0, env.Log)
		if err != nil {
			if _, statErr := os.Stat(o.UsersFile); statErr != nil && env.Validating {
				return registry.NotEvaluated(Name, err.Error()), nil
			}
			return nil, err
		}
		a.src, a.limit = src, NewLimiter(n, o.VerificationWait.Std())
		return a, nil
	}
	src, reused, err := resource.Get(env.Resources, resource.Key("basic.users_file", struct {
		Path     string
		TTL      time.Duration
		Size     int
		Interval time.Duration
	}{o.UsersFile, o.CacheTTL.Std(), o.CacheSize, o.ReloadInterval.Std()}), func() (*FileSource, func(), error) {
		s, err := OpenFile(o.UsersFile, o.CacheTTL.Std(), o.CacheSize, o.ReloadInterval.Std(), env.Log)
		if err != nil {
			return nil, nil, err
		}
		return s, s.Close, nil
	})
	if err != nil {
		return nil, err
	}
	if reused {
		// A configuration reload re-reads the file (an unchanged file
		// keeps its warm cache). A file that no longer parses fails the
		// reload: the running plan keeps serving.
		if err := src.Reload(); err != nil {
			return nil, err
		}
	}
	limit, err := sharedLimiter(env, n, o.VerificationWait.Std())
	if err != nil {
		return nil, err
	}
	a.src, a.limit = src, limit
	return a, nil
}

// buildStore makes the authenticator of a route whose users are in the
// API-key store.
func buildStore(env registry.Env, o *Options, a *Authenticator, n int) (authn.Authenticator, error) {
	v, err := env.Shared(registry.SharedKeyStore)
	if err != nil {
		if env.Validating {
			return registry.NotEvaluated(Name, "the users store is not opened offline"), nil
		}
		return nil, fmt.Errorf("authn/basic: users_store: %w", err)
	}
	us, ok := v.(apikey.UserStore)
	if !ok {
		return nil, fmt.Errorf("authn/basic: users_store: the API-key store (%T) cannot keep users", v)
	}
	if env.Resources == nil {
		src, err := OpenStore(context.Background(), us, o.CacheTTL.Std(), o.CacheSize, 0, env.Log)
		if err != nil {
			return nil, err
		}
		a.src, a.limit = src, NewLimiter(n, o.VerificationWait.Std())
		return a, nil
	}
	src, reused, err := resource.Get(env.Resources, resource.Key("basic.users_store", struct {
		Store    string
		TTL      time.Duration
		Size     int
		Interval time.Duration
	}{fmt.Sprintf("%p", us), o.CacheTTL.Std(), o.CacheSize, o.ReloadInterval.Std()}), func() (*StoreSource, func(), error) {
		s, err := OpenStore(context.Background(), us, o.CacheTTL.Std(), o.CacheSize, o.ReloadInterval.Std(), env.Log)
		if err != nil {
			return nil, nil, err
		}
		return s, s.Close, nil
	})
	if err != nil {
		return nil, err
	}
	if reused {
		// A store that cannot answer now keeps the users read before (the
		// poller retries); it does not fail the configuration reload.
		if err := src.Reload(context.Background()); err != nil {
			env.Log.Warn("authn/basic: users store not readable on reload; keeping the users read before", "route", env.Route.Name, "error", err)
		}
	}
	limit, err := sharedLimiter(env, n, o.VerificationWait.Std())
	if err != nil {
		return nil, err
	}
	a.src, a.limit = src, limit
	return a, nil
}

// sharedLimiter returns the verification limiter of n slots and wait that
// every route (and every reloaded plan) with the same bounds shares, so a
// reload does not hand out a second set of slots.
func sharedLimiter(env registry.Env, n int, wait time.Duration) (*Limiter, error) {
	limit, _, err := resource.Get(env.Resources, resource.Key("basic.limiter", struct {
		N    int
		Wait time.Duration
	}{n, wait}), func() (*Limiter, func(), error) {
		return NewLimiter(n, wait), nil, nil
	})
	return limit, err
}
