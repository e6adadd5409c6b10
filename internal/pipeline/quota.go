package pipeline

import (
	"context"
	"fmt"
	"time"

	"github.com/gatehouse/gatehouse/internal/audit"
	"github.com/gatehouse/gatehouse/internal/config"
	"github.com/gatehouse/gatehouse/internal/identity"
	"github.com/gatehouse/gatehouse/internal/quota"
	"github.com/gatehouse/gatehouse/internal/ratelimit"
	"github.com/gatehouse/gatehouse/internal/reply"
)

// Quotas (docs/rate-limits.md#quotas): a policy's day/month quotas per
// caller, counted durably once the policy's limits admitted the request.
// Over quota: 429 quota-exceeded with Retry-After (the time to the
// reset), and one quota.exceeded audit event per caller and window.

// reasonQuotaExceeded is the reason of a quota.exceeded audit event.
const reasonQuotaExceeded = "quota_exceeded"

// quotaRule is one compiled quota of a policy.
type quotaRule struct {
	q   quota.Quota
	key ratelimit.KeySpec
	// ns prefixes the rule's counters: policy and quota name.
	ns string
}

// quotaSet is a policy's quotas with their store.
type quotaSet struct {
	policy string
	rules  []quotaRule
	store  quota.Store
	// policyHeader is the quotas' RateLimit-Policy items.
	policyHeader string
}

// compileQuotas compiles a policy's quotas (nil for none).
func compileQuotas(policy string, rules []config.QuotaRule, store quota.Store, validating bool) (*quotaSet, error) {
	if len(rules) == 0 {
		return nil, nil
	}
	if store == nil && !validating {
		return nil, fmt.Errorf("quotas need a store: rate_limits.store redis, or an embedded or postgres api_keys.store")
	}
	qs := &quotaSet{policy: policy, store: store}
	var hdr []byte
	for i, r := range rules {
		per, err := quota.ParsePeriod(r.Period)
		if err != nil {
			return nil, err
		}
		q := quota.Quota{Name: r.Name, Limit: r.Limit, Period: per, Rolling: !r.IsCalendar(), Location: time.UTC}
		if r.TimeZone != "" {
			if q.Location, err = time.LoadLocation(r.TimeZone); err != nil {
				return nil, fmt.Errorf("quota %q: %w", r.Name, err)
			}
		}
		ks := r.Key
		if ks == "" {
			ks = "consumer"
		}
		spec, err := ratelimit.ParseKeySpec(ks)
		if err != nil {
			return nil, err
		}
		mode := "c"
		if q.Rolling {
			mode = "r"
		}
		// The namespace names the policy, the quota and its period: a
		// changed period or mode starts new counters.
		ns := policy + "/" + r.Name + "/" + per.String() + mode + "/"
		qs.rules = append(qs.rules, quotaRule{q: q, key: spec, ns: ns})
		if i > 0 {
			hdr = append(hdr, ", "...)
		}
		hdr = append(hdr, ratelimit.PolicyHeader([]ratelimit.Limit{{Name: r.Name, Rate: int(min(r.Limit, 1<<31-1)), Period: per.Length()}})...)
	}
	qs.policyHeader = string(hdr)
	return qs, nil
}

// quotaState is one quota's state for one caller at one moment.
type quotaState struct {
	window quota.Window
	res    quota.Result
}

// take counts the request against every quota, in order, and stops at
// the first that refuses (earlier quotas keep their count). header gets
// the quotas' RateLimit items appended.
func (qs *quotaSet) take(ctx context.Context, id *identity.Identity, route, ip string, now time.Time, header []byte) ([]byte, *quotaRule, quotaState, error) {
	for i := range qs.rules {
		r := &qs.rules[i]
		key, _ := r.key.Key(id, route, ip)
		w := r.q.Window(now)
		res, err := qs.store.Take(ctx, quota.Take{
			Key: r.ns + key, Window: w.ID, Prev: w.Prev, PrevWeight: w.PrevWeight,
			Limit: r.q.Limit, ExpireAt: r.q.ExpireAt(w),
		})
		if err != nil {
			return header, nil, quotaState{}, fmt.Errorf("pipeline: quota %q: %w", r.q.Name, err)
		}
		header = appendQuotaItem(header, r, w, res, now)
		if !res.OK {
			return header, r, quotaState{window: w, res: res}, nil
		}
	}
	return header, nil, quotaState{}, nil
}

// appendQuotaItem appends a quota's RateLimit item: remaining and the
// seconds to its reset.
func appendQuotaItem(b []byte, r *quotaRule, w quota.Window, res quota.Result, now time.Time) []byte {
	if len(b) > 0 {
		b = append(b, ", "...)
	}
	remaining := max(r.q.Limit-res.Used(w.PrevWeight), 0)
	b = ratelimit.AppendRateLimit(b, []ratelimit.Limit{{Name: r.q.Name}}, []ratelimit.Decision{{Remaining: int(min(remaining, 1<<31-1)), ResetAfter: r.q.ResetAfter(w, now, res.Cur)}})
	return b
}

// refuse builds the 429 of an exceeded quota and audits it once per
// caller and window (across replicas, through the store's mark).
func (qs *quotaSet) refuse(x *Exchange, log audit.Logger, r *quotaRule, st quotaState, id *identity.Identity, now time.Time) error {
	key, _ := r.key.Key(id, x.Route.Name, x.clientIPText())
	first, err := qs.store.MarkExceeded(x.Request.Context(), r.ns+key, st.window.ID, r.q.ExpireAt(st.window))
	if err == nil && first && log != nil {
		ev := x.auditEvent(audit.TypeQuotaExceeded)
		ev.Outcome, ev.Reason = audit.OutcomeDeny, reasonQuotaExceeded
		ev.Policy, ev.Rule = qs.policy, r.q.Name
		if !id.IsAnonymous() {
			ev.AuthMethod, ev.Subject, ev.Issuer, ev.ClientID, ev.CredentialID = string(id.Method), id.Subject, id.Issuer, id.ClientID, id.CredentialID
		}
		log.Log(ev)
	}
	// A failed mark costs at most a missing or repeated audit event; the
	// refusal stands.
	return &reply.TooManyRequestsError{
		RetryAfter:    r.q.RetryAfter(st.window, now, st.res.Cur, st.res.Prev),
		QuotaExceeded: true,
	}
}

// QuotaUsage reports the quotas of every policy that count by the
// identity alone (not by address or route) for id, at now.
func (p *Plan) QuotaUsage(ctx context.Context, id *identity.Identity, now time.Time) ([]quota.Usage, error) {
	out := []quota.Usage{}
	if p.rateLimits == nil {
		return out, nil
	}
	for _, name := range p.rateLimits.order {
		qs := p.rateLimits.policies[name].quotas
		if qs == nil {
			continue
		}
		for i := range qs.rules {
			r := &qs.rules[i]
			key, complete := r.key.Key(id, "", "")
			if !complete {
				continue // counts by route or address: not one number per caller
			}
			w := r.q.Window(now)
			cur, prev, err := qs.store.Counts(ctx, r.ns+key, w.ID, w.Prev)
			if err != nil {
				return nil, err
			}
			res := quota.Result{Cur: cur, Prev: prev}
			out = append(out, quota.Usage{
				Policy: name, Name: r.q.Name, Period: r.q.Period.String(), Calendar: !r.q.Rolling,
				Limit: r.q.Limit, Used: min(res.Used(w.PrevWeight), r.q.Limit),
				Reset: now.Add(r.q.ResetAfter(w, now, cur)).UTC().Truncate(time.Second),
			})
		}
	}
	return out, nil
}
