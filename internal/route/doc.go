// Package route is Gatehouse's route table: it decides which configured route
// handles a request, from the Host header, the path and the method.
//
// Config validation calls ParsePath and ValidateHost on user input; the
// compiled plan holds one Table built by NewTable; the request pipeline calls
// Table.Match once per request. Everything that can be decided ahead of time
// (validation, parsing, precedence order) is decided in NewTable, so Match is
// a scan that stops at the first full match and allocates only for {param}
// values.
//
// # Matching
//
// A route matches a request when all of its conditions hold:
//
//   - Host: an exact name ("api.example.com") or a wildcard ("*.example.com",
//     one or more labels in front of ".example.com", never "example.com"
//     itself); no hosts means any host. The Host header is compared without
//     its port, without one trailing dot and ignoring ASCII case.
//   - Path: a pattern whose segments are literals (case-sensitive) or
//     "{name}" parameters, each matching exactly one non-empty segment. An
//     exact pattern must match the whole path, and the trailing slash counts:
//     "/a" does not match "/a/", and "/a/" does not match "/a". A prefix
//     pattern matches on segment boundaries: "/api" matches "/api", "/api/"
//     and "/api/x" but not "/apix"; "/api/" matches "/api/" and "/api/x" but
//     not "/api"; "/" matches everything.
//   - Method: compared exactly against the route's list, except that GET
//     implies HEAD (RFC 9110 §9.3.2: HEAD is answered as the GET would be, so
//     it is routed as the GET); no list means any method.
//
// If no route matches host and path, the result is NotFound (404). If some
// do but none allows the method, it is MethodNotAllowed (405) with Allow
// listing their methods.
//
// # Precedence
//
// Among the routes that match host, path and method, the most specific wins.
// Two routes are compared by these rules, in order; the first that tells
// them apart decides:
//
//  1. Host: an exact host beats a wildcard, which beats no host condition;
//     between wildcards the longer suffix wins ("*.eu.example.com" beats
//     "*.example.com"). A route listing several hosts ranks by the one that
//     matched the request.
//  2. Path kind: an exact path beats a prefix.
//  3. More segments in the pattern wins, so the longest prefix wins
//     ("/api/v1" beats "/api" beats "/").
//  4. Comparing segments from the left, at the first position where one
//     pattern has a literal and the other a parameter, the literal wins
//     ("/users/me" beats "/users/{id}"). If that does not decide, a prefix
//     with a trailing slash beats the same prefix without ("/api/" beats
//     "/api"), as it matches a subset of the paths.
//  5. A route with a method list beats one that allows any method. For a
//     HEAD request, a route whose list names HEAD beats an equally specific
//     one that matches only because it lists GET.
//  6. Otherwise the route declared first wins; a later exact duplicate
//     never matches.
//
// docs/routing.md has worked examples.
package route
