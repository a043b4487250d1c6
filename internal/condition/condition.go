// Package condition compiles and evaluates the CEL expressions that policy
// rules use in `when:`. It owns the CEL environment (which variables exist and
// their types) so that config validation and the policy engine agree on it.
//
// Variables: agent (map: name, tenant, owner, runtime, model), call (map:
// tenant, agent, connector, action, action_type, environment, run_id), args
// (the call's arguments), env (the call's environment name), now and time (the
// call's time, a timestamp).
package condition

import (
	"errors"
	"fmt"
	"strings"
	"sync"
	"time"

	"cel.dev/cel-go/cel"
	"cel.dev/cel-go/common/types"
	"cel.dev/cel-go/common/types/ref"
)

// MaxSource bounds the length of a condition, so that a hostile config cannot
// make the compiler do unbounded work.
const MaxSource = 16 << 10

// MaxCost bounds the work one evaluation may do (CEL's abstract cost
// units), so that a condition iterating over agent-supplied arguments cannot
// be turned into a denial of service. Exceeding it is an evaluation error,
// which the engine treats as DENY.
const MaxCost = 1_000_000

var (
	envOnce sync.Once
	celEnv  *cel.Env
	envErr  error
)

func environment() (*cel.Env, error) {
	envOnce.Do(func() {
		dynMap := cel.MapType(cel.StringType, cel.DynType)
		celEnv, envErr = cel.NewEnv(
			cel.Variable("agent", dynMap),
			cel.Variable("call", dynMap),
			cel.Variable("args", dynMap),
			cel.Variable("env", cel.StringType),
			cel.Variable("now", cel.TimestampType),
			cel.Variable("time", cel.TimestampType),
		)
	})
	return celEnv, envErr
}

// Condition is a compiled CEL expression that yields a bool.
type Condition struct {
	src string
	prg cel.Program
}

// Source returns the expression as written.
func (c *Condition) Source() string { return c.src }

// Compile parses and type-checks src. The error names what is wrong in the
// expression; its text has no position prefix beyond CEL's own line:col.
func Compile(src string) (*Condition, error) {
	if strings.TrimSpace(src) == "" {
		return nil, errors.New("empty CEL expression")
	}
	if len(src) > MaxSource {
		return nil, fmt.Errorf("CEL expression is %d bytes; the limit is %d", len(src), MaxSource)
	}
	env, err := environment()
	if err != nil {
		return nil, fmt.Errorf("cel environment: %w", err)
	}
	ast, iss := env.Compile(src)
	if iss != nil && iss.Err() != nil {
		return nil, fmt.Errorf("invalid CEL: %s", oneLine(iss.Err().Error()))
	}
	if t := ast.OutputType(); !t.IsExactType(types.BoolType) && !t.IsExactType(types.DynType) {
		return nil, fmt.Errorf("CEL expression must yield a bool, not %s", t)
	}
	prg, err := env.Program(ast, cel.EvalOptions(cel.OptOptimize), cel.CostLimit(MaxCost))
	if err != nil {
		return nil, fmt.Errorf("invalid CEL: %s", oneLine(err.Error()))
	}
	return &Condition{src: src, prg: prg}, nil
}

// oneLine folds CEL's multi-line error (with its caret diagram) into one line
// so that it fits behind a file:line:col prefix.
func oneLine(s string) string {
	lines := strings.Split(s, "\n")
	out := lines[:0]
	for _, l := range lines {
		t := strings.TrimSpace(l)
		if t == "" || strings.HasPrefix(t, "|") {
			continue
		}
		out = append(out, strings.Replace(t, "ERROR: <input>:", "at ", 1))
	}
	return strings.Join(out, "; ")
}

// Input is what a condition sees. Values are converted to CEL lazily, so a
// condition that only reads args does not pay for the rest.
type Input struct {
	Agent map[string]any
	Call  map[string]any
	Args  map[string]any
	Env   string
	Now   time.Time
}

// ResolveName returns the CEL value of a variable.
func (in *Input) ResolveName(name string) (any, bool) {
	switch name {
	case "args":
		if in.Args == nil {
			return types.DefaultTypeAdapter.NativeToValue(map[string]any{}), true
		}
		return types.DefaultTypeAdapter.NativeToValue(in.Args), true
	case "agent":
		return types.DefaultTypeAdapter.NativeToValue(in.Agent), true
	case "call":
		return types.DefaultTypeAdapter.NativeToValue(in.Call), true
	case "env":
		return types.String(in.Env), true
	case "now", "time":
		return types.Timestamp{Time: in.Now}, true
	}
	return nil, false
}

// Eval runs the condition. Any runtime error (a missing key, a wrong type, a
// non-bool result) is returned as an error: callers fail closed on it.
func (c *Condition) Eval(in *Input) (bool, error) {
	out, _, err := c.prg.Eval(activation{in})
	if err != nil {
		return false, err
	}
	return asBool(out)
}

func asBool(v ref.Val) (bool, error) {
	if b, ok := v.(types.Bool); ok {
		return bool(b), nil
	}
	return false, fmt.Errorf("condition yielded %s, not a bool", v.Type().TypeName())
}
