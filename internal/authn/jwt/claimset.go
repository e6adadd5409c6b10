package jwt

import (
	"bytes"
	"encoding/json"
	"sync"
)

// claimNames is the set of top-level claim names a verifier reads: the
// registered claims it checks and the first segment (and every longer
// dotted prefix, see lookup) of every claim path a provider maps. A cache
// miss decodes only these members of the claims set: decoding a claims
// set into map[string]any costs an allocation or more per member (its
// name, its value, each element of an array), and a provider's token
// carries many members nobody reads (name, preferred_username, sid,
// session_state, allowed-origins, resource_access, …).
type claimNames map[string]struct{}

// registeredClaims are read by every verification, whatever the mapping.
var registeredClaims = []string{"iss", "sub", "aud", "exp", "nbf", "iat", "jti", "cnf"}

// addPath adds the names lookup(c, path) may read at the top level: the
// whole path, and the path up to each '.'.
func (n claimNames) addPath(path string) {
	n[path] = struct{}{}
	for i := 0; i < len(path); i++ {
		if path[i] == '.' {
			n[path[:i]] = struct{}{}
		}
	}
}

// addProvider adds every claim path p reads.
func (n claimNames) addProvider(p *provider) {
	for _, c := range registeredClaims {
		n.addPath(c)
	}
	for _, path := range []string{p.subject, p.audClaim, p.roles, p.groups} {
		if path != "" {
			n.addPath(path)
		}
	}
	for _, paths := range [][]string{p.required, p.clientID, p.scopes} {
		for _, path := range paths {
			n.addPath(path)
		}
	}
	for _, v := range p.values {
		n.addPath(v.path)
	}
	for _, c := range p.claims {
		n.addPath(c.path)
	}
}

// filteredPool recycles the buffers decodeNeededClaims copies the members
// it keeps into (the decoder copies them again, so a buffer is free once
// the decode returns).
var filteredPool = sync.Pool{New: func() any { b := make([]byte, 0, 2048); return &b }}

// decodeNeededClaims is decodeClaims restricted to the members of payload
// whose name is in needed. Every member kept decodes exactly as
// decodeClaims would decode it: its bytes are copied verbatim into a
// smaller object, decoded by decodeClaims. A payload with an escaped
// member name is decoded whole: "\u0073" and "s" name one member, of
// which the whole decode keeps the later, and a filter keeping only one
// of them would not (tokens with duplicate members are refused before
// this; the decode is exact on its own all the same). A payload that is not a valid
// JSON object is left to decodeClaims whole, for the same error.
//
// The scan relies on json.Valid having accepted the payload (so strings
// close, brackets balance, and nothing follows the object); it still
// checks every index, and falls back to the whole decode if one is out of
// range.
func decodeNeededClaims(payload []byte, needed claimNames) (map[string]any, error) {
	if len(needed) == 0 || !json.Valid(payload) {
		return decodeClaims(payload)
	}
	i := skipSpace(payload, 0)
	if i >= len(payload) || payload[i] != '{' {
		return decodeClaims(payload)
	}
	bp := filteredPool.Get().(*[]byte)
	defer filteredPool.Put(bp)
	out := append((*bp)[:0], '{')
	kept, total := 0, 0
	for i = skipSpace(payload, i+1); i < len(payload) && payload[i] != '}'; {
		if payload[i] != '"' {
			return decodeClaims(payload)
		}
		nameEnd := endOfString(payload, i) // just past the closing quote
		if nameEnd < 0 {
			return decodeClaims(payload)
		}
		name := payload[i+1 : nameEnd-1]
		colon := skipSpace(payload, nameEnd)
		if colon >= len(payload) || payload[colon] != ':' {
			return decodeClaims(payload)
		}
		valueEnd := endOfValue(payload, skipSpace(payload, colon+1))
		if valueEnd < 0 {
			return decodeClaims(payload)
		}
		total++
		if bytes.IndexByte(name, '\\') >= 0 {
			return decodeClaims(payload)
		}
		if _, ok := needed[string(name)]; ok {
			if kept > 0 {
				out = append(out, ',')
			}
			out = append(out, payload[i:valueEnd]...)
			kept++
		}
		i = skipSpace(payload, valueEnd)
		if i < len(payload) && payload[i] == ',' {
			i = skipSpace(payload, i+1)
		}
	}
	*bp = out
	if kept == total {
		return decodeClaims(payload)
	}
	return decodeClaims(append(out, '}'))
}

// skipSpace returns the index of the first byte at or after i that is not
// JSON whitespace.
func skipSpace(b []byte, i int) int {
	for i < len(b) && (b[i] == ' ' || b[i] == '\t' || b[i] == '\n' || b[i] == '\r') {
		i++
	}
	return i
}

// endOfString returns the index just past the JSON string that starts at
// b[i] ('"'), or -1.
func endOfString(b []byte, i int) int {
	for j := i + 1; j < len(b); j++ {
		switch b[j] {
		case '\\':
			j++
		case '"':
			return j + 1
		}
	}
	return -1
}

// endOfValue returns the index just past the JSON value that starts at
// b[i], or -1.
func endOfValue(b []byte, i int) int {
	if i >= len(b) {
		return -1
	}
	switch b[i] {
	case '"':
		return endOfString(b, i)
	case '{', '[':
		depth := 0
		for j := i; j < len(b); j++ {
			switch b[j] {
			case '"':
				end := endOfString(b, j)
				if end < 0 {
					return -1
				}
				j = end - 1
			case '{', '[':
				depth++
			case '}', ']':
				if depth--; depth == 0 {
					return j + 1
				}
			}
		}
		return -1
	}
	// A number or a literal: up to the next delimiter.
	j := i
	for j < len(b) && b[j] != ',' && b[j] != '}' && b[j] != ']' && b[j] != ' ' && b[j] != '\t' && b[j] != '\n' && b[j] != '\r' {
		j++
	}
	return j
}
