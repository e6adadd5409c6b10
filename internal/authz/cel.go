package authz

import (
	"fmt"
	"strings"
	"sync"
	"time"

	"cel.dev/cel-go/cel"
	"cel.dev/cel-go/common/types"
	"cel.dev/cel-go/common/types/ref"
	"cel.dev/cel-go/ext"
	"cel.dev/cel-go/interpreter"

	"github.com/gatehouse/gatehouse/internal/identity"
)

// Limits that keep a policy from stalling the gateway.
const (
	// MaxExpressionBytes is the longest expression Compile accepts.
	MaxExpressionBytes = 4096
	// CostLimit is the most CEL cost units one evaluation may spend; past it
	// the evaluation stops and the request is denied with expression_error.
	// Ordinary expressions cost tens of units.
	CostLimit = 100_000
)

// env is the one CEL environment every policy is compiled in; cel.Env is
// safe for concurrent use.
var env = sync.OnceValues(func() (*cel.Env, error) {
	return cel.NewEnv(
		cel.Variable("identity", cel.MapType(cel.StringType, cel.DynType)),
		cel.Variable("request", cel.MapType(cel.StringType, cel.DynType)),
		cel.Variable("now", cel.TimestampType),
		ext.Strings(),
		ext.Sets(),
		cel.CrossTypeNumericComparisons(true),
		cel.ParserExpressionSizeLimit(MaxExpressionBytes),
		cel.ParserRecursionLimit(100),
	)
})

// compileExpr parses and type-checks src; errors name fieldName.
func compileExpr(fieldName, src string) (*check, error) {
	if len(src) > MaxExpressionBytes {
		return nil, &CompileError{Field: fieldName, Msg: fmt.Sprintf("expression is %d bytes, more than the limit of %d", len(src), MaxExpressionBytes)}
	}
	e, err := env()
	if err != nil {
		return nil, &CompileError{Field: fieldName, Msg: "CEL environment: " + err.Error()}
	}
	ast, iss := e.Compile(src)
	if iss != nil && iss.Err() != nil {
		return nil, &CompileError{Field: fieldName, Msg: strings.TrimSpace(iss.Err().Error())}
	}
	if t := ast.OutputType(); !t.IsExactType(cel.BoolType) {
		return nil, &CompileError{Field: fieldName, Msg: fmt.Sprintf("expression has type %s, want bool (compare dynamic values explicitly, e.g. identity.claims.admin == true)", t)}
	}
	prg, err := e.Program(ast, cel.CostLimit(CostLimit), cel.EvalOptions(cel.OptOptimize))
	if err != nil {
		return nil, &CompileError{Field: fieldName, Msg: err.Error()}
	}
	info := analyze(ast.NativeRep().Expr())
	return &check{rule: fieldName, kind: kindExpr, prog: prg, reason: ReasonExpressionFalse, info: info}, nil
}

func (c *check) evalExpr(e *evaluation) result {
	var act *activation
	if c.info.namesHead {
		// This expression tells HEAD from GET itself: it sees the method
		// as sent (its own activation, so the shared one keeps "GET").
		if e.rawAct == nil {
			e.rawAct = &activation{in: e.in, id: e.id, method: e.in.Method}
		}
		act = e.rawAct
	} else {
		if e.act == nil {
			e.act = &activation{in: e.in, id: e.id, method: authzMethod(e.in.Method)}
		}
		act = e.act
	}
	out, _, err := c.prog.Eval(act)
	var r result
	if err != nil {
		r.reason = ReasonExpressionError
		if e.explain {
			r.detail = "error: " + err.Error()
		}
		return r
	}
	b, isBool := out.Value().(bool)
	switch {
	case !isBool:
		r.reason = ReasonExpressionError
		if e.explain {
			r.detail = fmt.Sprintf("error: result %v is not a bool", out.Value())
		}
	case b:
		r.ok = true
		if e.explain {
			r.detail = "true"
		}
	default:
		if e.explain {
			r.detail = "false"
		}
	}
	return r
}

// activation resolves the CEL variables of one request, building each only
// when an expression first refers to it and then reusing it for the
// policy's other expressions.
type activation struct {
	in *Input
	id *identity.Identity
	// method is request.method: "GET" for a HEAD request unless the
	// expression names HEAD (RFC 9110 §9.3.2: HEAD is authorized as GET).
	method string
	ident  ref.Val
	req    ref.Val
	now    ref.Val
}

var _ interpreter.Activation = (*activation)(nil)

func (a *activation) ResolveName(name string) (any, bool) {
	switch name {
	case "identity":
		if a.ident == nil {
			a.ident = &lazyMap{src: identitySource{a.id}}
		}
		return a.ident, true
	case "request":
		if a.req == nil {
			a.req = &lazyMap{src: requestSource{a}}
		}
		return a.req, true
	case "now":
		if a.now == nil {
			t := a.in.Now
			if t.IsZero() {
				t = time.Now()
			}
			a.now = types.Timestamp{Time: t}
		}
		return a.now, true
	}
	return nil, false
}

func (a *activation) Parent() interpreter.Activation { return nil }
