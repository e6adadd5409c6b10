package route

import (
	"slices"
	"strings"
)

// This file is a deliberately naive re-statement of the matching and
// precedence rules (split strings, compare all candidates), written without
// the Table's data structures. Tests and fuzz targets check that Match agrees
// with it, so a clever optimisation in table.go cannot silently change a
// result.

// refResult is what the reference decides for one request.
type refResult struct {
	index  int
	status Status
	allow  string
	params map[string]string
}

func refCanonicalHost(host string) string {
	if strings.HasPrefix(host, "[") {
		if i := strings.Index(host, "]"); i >= 0 {
			host = host[:i+1]
		}
	} else if h, _, ok := strings.Cut(host, ":"); ok {
		host = h
	}
	host = strings.TrimSuffix(host, ".")
	return strings.Map(func(r rune) rune {
		if r >= 'A' && r <= 'Z' {
			return r + 'a' - 'A'
		}
		return r
	}, host)
}

// refHostRank returns whether cond matches host and, if so, a rank where
// bigger is more specific: exact 1000, wildcard its suffix length, any host -1.
func refHostRank(cond, host string) (int, bool) {
	if cond == "" {
		return -1, true
	}
	if suffix, ok := strings.CutPrefix(cond, "*"); ok {
		return len(suffix), strings.HasSuffix(host, suffix) && len(host) > len(suffix)
	}
	return 1000, host == cond
}

// refPathMatch matches by splitting both strings on "/".
func refPathMatch(pattern string, prefix bool, path string) (map[string]string, bool) {
	if !strings.HasPrefix(path, "/") {
		return nil, false
	}
	ps := strings.Split(pattern, "/")[1:]
	rs := strings.Split(path, "/")[1:]
	trailing := ps[len(ps)-1] == ""
	if !prefix && len(ps) != len(rs) || len(rs) < len(ps) {
		return nil, false
	}
	params := map[string]string{}
	for i, p := range ps {
		switch {
		case prefix && trailing && i == len(ps)-1:
			// "/api/" as a prefix only needs a slash after "api".
		case strings.HasPrefix(p, "{"):
			if rs[i] == "" {
				return nil, false
			}
			params[p[1:len(p)-1]] = rs[i]
		case p != rs[i]:
			return nil, false
		}
	}
	return params, true
}

// refKey is a route's specificity for one matched host as a vector compared
// lexicographically, bigger first: host rank, exact path, segment count,
// literal flags per segment, trailing slash, has methods, names the method
// itself (only ever 0 for a HEAD matched through GET), -index.
func refKey(hostRank int, s Spec, index int, method string) []int {
	segs := strings.Split(s.Path, "/")[1:]
	trailing := 0
	if segs[len(segs)-1] == "" {
		trailing = 1
		segs = segs[:len(segs)-1]
	}
	key := []int{hostRank, b2i(!s.Prefix), len(segs)}
	for _, seg := range segs {
		key = append(key, b2i(!strings.HasPrefix(seg, "{")))
	}
	explicit := len(s.Methods) == 0 || slices.Contains(s.Methods, method)
	return append(key, trailing, b2i(len(s.Methods) > 0), b2i(explicit), -index)
}

func b2i(b bool) int {
	if b {
		return 1
	}
	return 0
}

// refMatch decides a request the slow way: every (route, host) candidate
// that matches fully is scored, and the best score wins.
func refMatch(specs []Spec, host, path, method string) refResult {
	h := refCanonicalHost(host)
	best := refResult{index: -1, status: NotFound}
	var bestKey []int
	var allow []string
	for i, s := range specs {
		conds := s.Hosts
		if len(conds) == 0 {
			conds = []string{""}
		}
		for _, c := range conds {
			rank, ok := refHostRank(c, h)
			if !ok {
				continue
			}
			params, ok := refPathMatch(s.Path, s.Prefix, path)
			if !ok {
				continue
			}
			if len(s.Methods) > 0 && !refMethodOK(s.Methods, method) {
				allow = append(allow, s.Methods...)
				if slices.Contains(s.Methods, "GET") {
					allow = append(allow, "HEAD")
				}
				continue
			}
			key := refKey(rank, s, i, method)
			if bestKey == nil || slices.Compare(key, bestKey) > 0 {
				bestKey = key
				best = refResult{index: i, status: Matched, params: params}
			}
		}
	}
	if best.status != Matched && len(allow) > 0 {
		slices.Sort(allow)
		best = refResult{index: -1, status: MethodNotAllowed, allow: strings.Join(slices.Compact(allow), ", ")}
	}
	if len(best.params) == 0 {
		best.params = nil
	}
	return best
}

// refMethodOK is the method rule: listed, or HEAD where GET is listed.
func refMethodOK(methods []string, method string) bool {
	return slices.Contains(methods, method) || method == "HEAD" && slices.Contains(methods, "GET")
}

// paramsMap converts Params for comparison with refResult.params.
func paramsMap(p Params) map[string]string {
	if p == nil {
		return nil
	}
	m := map[string]string{}
	for _, x := range p {
		m[x.Name] = x.Value
	}
	return m
}
