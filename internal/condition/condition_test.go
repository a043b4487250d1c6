package condition_test

import (
	"strings"
	"testing"
	"time"

	"github.com/warden-dev/warden/internal/condition"
)

func TestCompileAndEval(t *testing.T) {
	in := &condition.Input{
		Agent: map[string]any{"name": "bot", "owner": "o@example.com"},
		Call:  map[string]any{"action": "refund", "action_type": "external"},
		Args:  map[string]any{"amount_cents": int64(20000), "rate": 0.5, "tags": []any{"a", "b"}, "nested": map[string]any{"k": "v"}},
		Env:   "production",
		Now:   time.Date(2026, 11, 21, 3, 0, 0, 0, time.UTC),
	}
	tests := []struct {
		expr    string
		want    bool
		wantErr string
	}{
		{`args.amount_cents > 10000`, true, ""},
		{`args.amount_cents + 1 == 20001`, true, ""},
		{`args.rate < 1`, true, ""},
		{`"a" in args.tags`, true, ""},
		{`args.nested.k == "v"`, true, ""},
		{`has(args.missing)`, false, ""},
		{`env == "production" && agent.name == "bot"`, true, ""},
		{`call.action_type == "external"`, true, ""},
		{`now.getHours() == 3 && time == now`, true, ""},
		{`args.missing > 1`, false, "no such key"},
		{`args.nested > 1`, false, "no such overload"},
		{`args.tags`, false, "not a bool"},
	}
	for _, tt := range tests {
		t.Run(tt.expr, func(t *testing.T) {
			c, err := condition.Compile(tt.expr)
			if err != nil {
				t.Fatalf("Compile: %v", err)
			}
			got, err := c.Eval(in)
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("Eval err = %v, want %q", err, tt.wantErr)
				}
				return
			}
			if err != nil || got != tt.want {
				t.Errorf("Eval = %v, %v; want %v", got, err, tt.want)
			}
		})
	}
}

func TestCompileErrors(t *testing.T) {
	tests := []struct{ expr, want string }{
		{``, "empty"},
		{`args.x >`, "Syntax error"},
		{`foo == 1`, "undeclared reference to 'foo'"},
		{`1 + 2`, "must yield a bool"},
		{`"x"`, "must yield a bool"},
		{strings.Repeat("a", condition.MaxSource+1), "limit"},
	}
	for _, tt := range tests {
		_, err := condition.Compile(tt.expr)
		if err == nil || !strings.Contains(err.Error(), tt.want) {
			t.Errorf("Compile(%.20q) = %v, want %q", tt.expr, err, tt.want)
		}
		if err != nil && strings.Contains(err.Error(), "\n") {
			t.Errorf("Compile(%.20q) error spans lines: %q", tt.expr, err)
		}
	}
}

// FuzzCompile: the condition compiler never panics and every program it
// accepts evaluates to a bool or an error.
func FuzzCompile(f *testing.F) {
	for _, s := range []string{
		`args.amount_cents > 10000`, `has(args.x) && args.x.startsWith("a")`, `now.getHours() >= 22`,
		`agent.owner.endsWith("@example.com")`, `args.tags.exists(t, t == "x")`, `size(args) > 2`,
		`env in ["prod", "staging"]`, `call.run_id.matches("^[a-z]+$")`, `int(args.n) % 2 == 0`,
	} {
		f.Add(s)
	}
	in := &condition.Input{Agent: map[string]any{}, Call: map[string]any{}, Args: map[string]any{"x": "a", "n": int64(2), "tags": []any{"x"}}}
	f.Fuzz(func(t *testing.T, expr string) {
		c, err := condition.Compile(expr)
		if err != nil {
			if strings.Contains(err.Error(), "\n") {
				t.Fatalf("multi-line error: %q", err)
			}
			return
		}
		_, _ = c.Eval(in)
	})
}

func TestCostLimit(t *testing.T) {
	list := make([]any, 2000)
	for i := range list {
		list[i] = int64(i)
	}
	c, err := condition.Compile(`args.l.all(x, args.l.all(y, x + y >= 0))`)
	if err != nil {
		t.Fatal(err)
	}
	_, err = c.Eval(&condition.Input{Args: map[string]any{"l": list}})
	if err == nil || !strings.Contains(err.Error(), "cost limit") {
		t.Errorf("Eval err = %v, want a cost limit error", err)
	}
}
