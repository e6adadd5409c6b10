package authz

import (
	"slices"
	"strings"

	celast "cel.dev/cel-go/common/ast"
	"cel.dev/cel-go/common/types"
)

// Reads is what a policy's expressions read from the request headers and
// query. The gateway refuses a request that carries two values for a name
// a policy reads: the policy sees the first value only, and a backend that
// reads the last (or joins them) would act on a value nobody checked.
//
// It is derived from the checked CEL syntax tree at compile time. An
// expression that uses request.headers or request.query other than by a
// constant key (iteration, a computed key, the whole map, or request
// itself) sets AnyHeader or AnyQuery: then a duplicate of any header or
// query parameter is ambiguous.
type Reads struct {
	// Headers are lower-case header names read by constant key.
	Headers []string
	// AnyHeader: the expression may read any header.
	AnyHeader bool
	// Query are query parameter names read by constant key.
	Query []string
	// AnyQuery: the expression may read any query parameter.
	AnyQuery bool
}

// Empty reports whether the policy reads no header and no query parameter.
func (r Reads) Empty() bool {
	return len(r.Headers) == 0 && len(r.Query) == 0 && !r.AnyHeader && !r.AnyQuery
}

func (r *Reads) merge(o Reads) {
	r.AnyHeader = r.AnyHeader || o.AnyHeader
	r.AnyQuery = r.AnyQuery || o.AnyQuery
	for _, h := range o.Headers {
		if !slices.Contains(r.Headers, h) {
			r.Headers = append(r.Headers, h)
		}
	}
	for _, q := range o.Query {
		if !slices.Contains(r.Query, q) {
			r.Query = append(r.Query, q)
		}
	}
}

// exprInfo is what the analysis learns about one expression.
type exprInfo struct {
	reads Reads
	// namesHead: a string constant spells "HEAD" (any case). Such an
	// expression tells HEAD from GET itself, so it sees the real method;
	// every other expression sees "GET" for a HEAD request.
	namesHead bool
}

func analyze(e celast.Expr) exprInfo {
	var info exprInfo
	info.visit(e)
	slices.Sort(info.reads.Headers)
	slices.Sort(info.reads.Query)
	return info
}

func (info *exprInfo) add(field, key string) {
	switch field {
	case "headers":
		key = strings.ToLower(key) // request.headers only has lower-case keys; a read of another spelling finds nothing
		if !slices.Contains(info.reads.Headers, key) {
			info.reads.Headers = append(info.reads.Headers, key)
		}
	case "query":
		if !slices.Contains(info.reads.Query, key) {
			info.reads.Query = append(info.reads.Query, key)
		}
	}
}

func (info *exprInfo) any(field string) {
	switch field {
	case "headers":
		info.reads.AnyHeader = true
	case "query":
		info.reads.AnyQuery = true
	}
}

func isRequest(e celast.Expr) bool {
	return e.Kind() == celast.IdentKind && e.AsIdent() == "request"
}

func stringLiteral(e celast.Expr) (string, bool) {
	if e.Kind() != celast.LiteralKind {
		return "", false
	}
	s, ok := e.AsLiteral().(types.String)
	return string(s), ok
}

// requestField recognises request.<field> and request["<field>"].
func requestField(e celast.Expr) (string, bool) {
	switch e.Kind() {
	case celast.SelectKind:
		s := e.AsSelect()
		if isRequest(s.Operand()) {
			return s.FieldName(), true
		}
	case celast.CallKind:
		c := e.AsCall()
		if c.FunctionName() == "_[_]" && len(c.Args()) == 2 && isRequest(c.Args()[0]) {
			return stringLiteral(c.Args()[1])
		}
	}
	return "", false
}

// visit walks e. A use of request.headers or request.query that is not a
// constant-key read, presence test or has() marks the whole map as read.
func (info *exprInfo) visit(e celast.Expr) {
	if f, ok := requestField(e); ok {
		// request.headers or request.query used as a whole.
		info.any(f)
		return
	}
	switch e.Kind() {
	case celast.IdentKind:
		if isRequest(e) {
			// request itself, or request[computed]: anything may be read.
			info.reads.AnyHeader, info.reads.AnyQuery = true, true
		}
	case celast.LiteralKind:
		if s, ok := stringLiteral(e); ok && strings.EqualFold(s, "HEAD") {
			info.namesHead = true
		}
	case celast.SelectKind:
		s := e.AsSelect()
		if f, ok := requestField(s.Operand()); ok {
			info.add(f, s.FieldName()) // request.query.tenant, has(request.query.tenant)
			return
		}
		info.visit(s.Operand())
	case celast.CallKind:
		c := e.AsCall()
		args := c.Args()
		switch c.FunctionName() {
		case "_[_]":
			if f, ok := requestField(args[0]); ok {
				if k, ok := stringLiteral(args[1]); ok {
					info.add(f, k) // request.headers["x-tenant"]
					return
				}
				info.any(f)
				info.visit(args[1])
				return
			}
		case "@in":
			if f, ok := requestField(args[1]); ok {
				if k, ok := stringLiteral(args[0]); ok {
					info.add(f, k) // "x-tenant" in request.headers
					return
				}
			}
		}
		if c.IsMemberFunction() {
			info.visit(c.Target())
		}
		for _, a := range args {
			info.visit(a)
		}
	case celast.ListKind:
		for _, el := range e.AsList().Elements() {
			info.visit(el)
		}
	case celast.MapKind:
		for _, en := range e.AsMap().Entries() {
			me := en.AsMapEntry()
			info.visit(me.Key())
			info.visit(me.Value())
		}
	case celast.StructKind:
		for _, en := range e.AsStruct().Fields() {
			info.visit(en.AsStructField().Value())
		}
	case celast.ComprehensionKind:
		c := e.AsComprehension()
		info.visit(c.IterRange())
		info.visit(c.AccuInit())
		info.visit(c.LoopCondition())
		info.visit(c.LoopStep())
		info.visit(c.Result())
	}
}
