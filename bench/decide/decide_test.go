package decide_test

import (
	"context"
	"encoding/json"
	"fmt"
	"math/rand/v2"
	"os/exec"
	"slices"
	"strconv"
	"strings"
	"testing"

	"github.com/open-policy-agent/opa/v1/rego"
	"github.com/open-policy-agent/opa/v1/storage/inmem"

	"github.com/warden-dev/warden/internal/call"
	"github.com/warden-dev/warden/internal/config"
	"github.com/warden-dev/warden/internal/policy"
)

// sizes are the rule counts the benchmark compares at.
var sizes = []int{10, 100, 1000}

const (
	agentName = "bench"
	// connectors are c00…c49. The agent holds permissions on the first
	// permitted of them; the rest are declared but unlisted (default deny).
	connectors = 50
	permitted  = 45
	// anchored connectors (c00…c04) carry only the hand-written anchor rules,
	// so the calls aimed at them mean the same thing at every size.
	anchored = 5
)

// actions every connector has, with their types.
var actions = []struct {
	name string
	typ  call.ActionType
}{
	{"read_item", call.Read},
	{"read_list", call.Read},
	{"search", call.Read},
	{"write_item", call.Write},
	{"update_item", call.Write},
	{"delete_item", call.Delete},
	{"run_job", call.Execute},
	{"fetch_url", call.Network},
	{"send_message", call.External},
	{"transfer", call.External},
}

func connectorName(i int) string { return fmt.Sprintf("c%02d", i) }

// mode is the agent's permission for an action, "" when unlisted: fetch_url
// is never listed, delete_item is off on even connectors, transfers ask on
// the higher connectors, everything else is on.
func mode(conn int, action string) config.Mode {
	switch {
	case conn >= permitted, action == "fetch_url":
		return ""
	case action == "delete_item" && conn%2 == 0:
		return config.Off
	case action == "transfer" && conn >= 30:
		return config.Ask
	}
	return config.On
}

// rule is one rule in a form both generators read, so that the YAML and the
// Rego cannot drift apart. Match fields are "" (anything), a name, or a glob.
type rule struct {
	name        string
	connector   string
	action      string
	actionType  string
	environment string
	when        *cond
	decision    call.Decision
	constraints []constraint
}

// cond is a `when` condition in both languages. Every CEL condition guards
// the arguments it reads with has(): an unguarded read of a missing argument
// is a CEL error, which warden turns into DENY (fail closed), while in Rego
// it is merely undefined. With the guards both engines treat a missing
// argument as "condition false", and the comparison stays exact.
type cond struct {
	cel  string
	rego []string // expressions of a Rego rule body
}

func bigAmount(region string, over int) *cond {
	return &cond{
		cel: fmt.Sprintf(`has(args.amount) && has(args.region) && args.amount > %d && args.region == %q`, over, region),
		rego: []string{
			"is_number(input.args.amount)",
			fmt.Sprintf("input.args.amount > %d", over),
			fmt.Sprintf("input.args.region == %q", region),
		},
	}
}

func targetPrefix(prefix string) *cond {
	return &cond{
		cel:  fmt.Sprintf(`has(args.target) && args.target.startsWith(%q)`, prefix),
		rego: []string{fmt.Sprintf("startswith(input.args.target, %q)", prefix)},
	}
}

func countOver(n int) *cond {
	return &cond{
		cel:  fmt.Sprintf(`has(args.count) && args.count > %d`, n),
		rego: []string{"is_number(input.args.count)", fmt.Sprintf("input.args.count > %d", n)},
	}
}

// constraint is one ALLOW_WITH_CONSTRAINTS bound in both languages: yaml is
// its value under `constraints: {args.ARG: ...}`, rego an expression that
// holds when the call's argument satisfies it (a missing argument does not).
type constraint struct {
	arg  string
	yaml string
	rego string
}

func maxC(arg string, limit int) constraint {
	return constraint{arg, fmt.Sprintf("{max: %d}", limit), fmt.Sprintf("ok_max(input.args, %q, %d)", arg, limit)}
}

func inC(arg string, allowed ...string) constraint {
	quoted := make([]string, len(allowed))
	for i, a := range allowed {
		quoted[i] = strconv.Quote(a)
	}
	list := strings.Join(quoted, ", ")
	return constraint{arg, fmt.Sprintf("{in: [%s]}", list), fmt.Sprintf("ok_in(input.args, %q, {%s})", arg, list)}
}

func patternC(arg, re string) constraint {
	return constraint{arg, fmt.Sprintf("{pattern: %q}", re), fmt.Sprintf("ok_pattern(input.args, %q, %q)", arg, re)}
}

func maxLengthC(arg string, n int) constraint {
	return constraint{arg, fmt.Sprintf("{max_length: %d}", n), fmt.Sprintf("ok_max_length(input.args, %q, %d)", arg, n)}
}

// anchors are the first rules at every size, and all of them at size 10:
// the policy a team would write first. The calls below aim at them.
var anchors = []rule{
	{name: "reads-are-fine", action: "read_*", decision: call.Allow},
	{name: "prod-writes", environment: "prod*", actionType: "write", decision: call.RequireApproval},
	{name: "big-eu-transfers", connector: "c00", action: "transfer", when: bigAmount("eu", 500), decision: call.RequireApproval},
	{name: "transfer-limits", connector: "c00", action: "transfer", decision: call.AllowWithConstraints,
		constraints: []constraint{maxC("amount", 10000), inC("region", "eu", "us")}},
	{name: "no-prod-targets", connector: "c01", action: "write_item", when: targetPrefix("prod-"), decision: call.Deny},
	{name: "target-names", connector: "c01", action: "write_item", decision: call.AllowWithConstraints,
		constraints: []constraint{patternC("target", `^[a-z0-9-]+$`)}},
	{name: "message-limits", connector: "c02", action: "send_message", decision: call.AllowWithConstraints,
		constraints: []constraint{maxLengthC("message", 80), inC("channel", "ops", "eng")}},
	{name: "mass-messages", connector: "c02", action: "send_message", when: countOver(100), decision: call.RequireApproval},
	{name: "no-prod-deletes", actionType: "delete", environment: "production", decision: call.Deny},
	{name: "jobs-frozen", connector: "c03", action: "run_job", decision: call.Deny},
}

// rules returns n rules: the anchors, then generated ones spread over the
// connectors c05…c49 × 10 actions, so that only a few match any one call.
// A third carry a CEL condition; the rest are constraints, approvals in
// production, denials and plain allows, with an occasional glob.
func rules(n int) []rule {
	out := slices.Clone(anchors[:min(n, len(anchors))])
	rng := rand.New(rand.NewPCG(1, 2)) // the same seed at every size: rules(100) is a prefix of rules(1000)
	regions := []string{"eu", "us", "apac"}
	for i := len(out); i < n; i++ {
		r := rule{
			name:      fmt.Sprintf("r%04d", i),
			connector: connectorName(anchored + rng.IntN(connectors-anchored)),
			action:    actions[rng.IntN(len(actions))].name,
		}
		switch i % 9 {
		case 0:
			r.when, r.decision = bigAmount(regions[rng.IntN(len(regions))], 100*(1+rng.IntN(20))), call.RequireApproval
		case 1:
			r.when, r.decision = targetPrefix("prod-"), call.Deny
		case 2:
			r.when, r.decision = countOver(10*(1+rng.IntN(50))), call.RequireApproval
		case 3:
			r.decision = call.AllowWithConstraints
			r.constraints = []constraint{maxC("amount", 1000*(1+rng.IntN(10))), inC("region", regions[:1+rng.IntN(len(regions))]...)}
		case 4:
			r.decision = call.AllowWithConstraints
			r.constraints = []constraint{patternC("target", `^[a-z][a-z0-9-]*$`), maxLengthC("message", 40+rng.IntN(200))}
		case 5:
			r.environment, r.decision = "production", call.RequireApproval
		case 6:
			r.environment, r.decision = "production", call.Deny
		default:
			r.decision = call.Allow
		}
		switch i % 40 {
		case 13:
			r.action = "read_*"
		case 27:
			r.environment = "prod*"
		}
		out = append(out, r)
	}
	return out
}

// configYAML renders the connectors, the agent and one policy holding rs.
func configYAML(rs []rule) []byte {
	var b strings.Builder
	for c := range connectors {
		fmt.Fprintf(&b, "kind: connector\nname: %s\ntype: mcp\nactions:\n", connectorName(c))
		for _, a := range actions {
			fmt.Fprintf(&b, "  %s: {type: %s}\n", a.name, a.typ)
		}
		b.WriteString("---\n")
	}
	fmt.Fprintf(&b, "kind: agent\nname: %s\npermissions:\n", agentName)
	for c := range permitted {
		fmt.Fprintf(&b, "  %s:\n", connectorName(c))
		for _, a := range actions {
			if m := mode(c, a.name); m != "" {
				fmt.Fprintf(&b, "    %s: %s\n", a.name, m)
			}
		}
	}
	b.WriteString("---\nkind: policy\nname: bench\nrules:\n")
	for _, r := range rs {
		fmt.Fprintf(&b, "  - name: %s\n    match: {", r.name)
		var m []string
		for _, f := range []struct{ key, val string }{
			{"connector", r.connector}, {"action", r.action}, {"action_type", r.actionType}, {"environment", r.environment},
		} {
			if f.val != "" {
				m = append(m, fmt.Sprintf("%s: %q", f.key, f.val))
			}
		}
		fmt.Fprintf(&b, "%s}\n", strings.Join(m, ", "))
		if r.when != nil {
			fmt.Fprintf(&b, "    when: '%s'\n", r.when.cel)
		}
		fmt.Fprintf(&b, "    decision: %s\n", r.decision)
		if len(r.constraints) > 0 {
			b.WriteString("    constraints:\n")
			for _, k := range r.constraints {
				fmt.Fprintf(&b, "      args.%s: %s\n", k.arg, k.yaml)
			}
		}
	}
	return []byte(b.String())
}

// regoPrelude is the fixed part of the Rego module: warden's semantics
// (default deny, permission as ceiling, most restrictive wins, a violated
// constraint is DENY) written the way a Rego author would.
const regoPrelude = `package warden

tenant := input.tenant if {
	input.tenant != ""
} else := "default"

# Undefined for an unknown agent, connector or action and for an action the
# agent's permissions do not list.
mode := data.tables.permissions[tenant][input.agent][input.connector][input.action]

action_type := data.tables.action_types[input.connector][input.action]

# The first branch that holds decides, from most restrictive down; each rule
# set is evaluated only when the branches above it did not hold. The
# permission is named when it alone sets the decision's level.
decision := {"decision": "DENY", "rules": {"default-deny"}} if {
	not mode
} else := {"decision": "DENY", "rules": {"permission"}} if {
	mode == "off"
} else := {"decision": "DENY", "rules": violations} if {
	count(violations) > 0
} else := {"decision": "DENY", "rules": deny} if {
	count(deny) > 0
} else := {"decision": "REQUIRE_APPROVAL", "rules": approve | {"permission"}} if {
	mode == "ask"
} else := {"decision": "REQUIRE_APPROVAL", "rules": approve} if {
	count(approve) > 0
} else := {"decision": "ALLOW_WITH_CONSTRAINTS", "rules": constrain} if {
	count(constrain) > 0
} else := {"decision": "ALLOW", "rules": allow | {"permission"}}

# Constraint checks: a missing argument or one of the wrong type fails.
ok_max(args, key, limit) if {
	v := args[key]
	is_number(v)
	v <= limit
}

ok_in(args, key, allowed) if args[key] in allowed

ok_pattern(args, key, pattern) if {
	v := args[key]
	is_string(v)
	regex.match(pattern, v)
}

ok_max_length(args, key, n) if {
	v := args[key]
	is_string(v)
	count(v) <= n
}
`

// regoModule renders the prelude and, for each rule, one body of the set of
// its decision (allow, constrain, approve, deny) and, for a constrained rule,
// one `violations` body per constraint. Each body starts with equality on
// input fields, which OPA's rule index uses to skip rules that cannot match.
// The anchors give every set at least one body at every size, so none of
// them is ever an undefined reference.
func regoModule(rs []rule) string {
	var b strings.Builder
	b.WriteString(regoPrelude)
	for _, r := range rs {
		body := r.regoMatch()
		fmt.Fprintf(&b, "\n%s contains %q if {\n\t%s\n}\n", regoSet[r.decision], r.name, strings.Join(body, "\n\t"))
		for _, k := range r.constraints {
			fmt.Fprintf(&b, "\nviolations contains %q if {\n\t%s\n\tnot %s\n}\n", r.name, strings.Join(body, "\n\t"), k.rego)
		}
	}
	return b.String()
}

// regoSet names the Rego set that collects the rules of each decision.
var regoSet = map[call.Decision]string{
	call.Allow:                "allow",
	call.AllowWithConstraints: "constrain",
	call.RequireApproval:      "approve",
	call.Deny:                 "deny",
}

// regoTables is the data the Rego policy reads: the agent's permissions
// (tenant → agent → connector → action → mode) and each action's type
// (connector → action → type), as OPA would hold them in its store.
func regoTables() map[string]any {
	perms := map[string]any{}
	for c := range permitted {
		acts := map[string]any{}
		for _, a := range actions {
			if m := mode(c, a.name); m != "" {
				acts[a.name] = string(m)
			}
		}
		perms[connectorName(c)] = acts
	}
	types := map[string]any{}
	for c := range connectors {
		acts := map[string]any{}
		for _, a := range actions {
			acts[a.name] = string(a.typ)
		}
		types[connectorName(c)] = acts
	}
	return map[string]any{
		"permissions":  map[string]any{"default": map[string]any{agentName: perms}},
		"action_types": types,
	}
}

// regoMatch is the rule's match and condition as Rego body expressions.
// Globs use glob.match with "/" as the only delimiter, which is what Go's
// path.Match (warden's matcher) treats as a separator.
func (r *rule) regoMatch() []string {
	var body []string
	for _, f := range []struct{ pattern, ref string }{
		{r.connector, "input.connector"}, {r.action, "input.action"},
		{r.actionType, "action_type"}, {r.environment, "input.environment"},
	} {
		switch {
		case f.pattern == "":
		case strings.ContainsAny(f.pattern, `*?[\`):
			body = append(body, fmt.Sprintf("glob.match(%q, [\"/\"], %s)", f.pattern, f.ref))
		default:
			body = append(body, fmt.Sprintf("%s == %q", f.ref, f.pattern))
		}
	}
	if r.when != nil {
		body = append(body, r.when.rego...)
	}
	if len(body) == 0 {
		body = []string{"true"}
	}
	return body
}

// calls are representative: allowed, denied by permission, matching CEL
// rules, violating constraints. Most aim at the anchors; the last few aim at
// generated rules that exist from size 100 on (rules(100) is a prefix of
// rules(1000)), so that their outcome changes with size. Numbers are int64
// or float64, as call.DecodeArgs makes them.
var calls = []struct {
	name string
	call call.Call
}{
	{"plain read", call.Call{Agent: agentName, Connector: "c22", Action: "read_item", Args: map[string]any{"id": "42"}}},
	{"unlisted connector", call.Call{Agent: agentName, Connector: "c47", Action: "read_item"}},
	{"unlisted action", call.Call{Agent: agentName, Connector: "c12", Action: "fetch_url", Args: map[string]any{"url": "https://example.com"}}},
	{"permission off", call.Call{Agent: agentName, Connector: "c04", Action: "delete_item", Args: map[string]any{"id": "7"}}},
	{"unknown agent", call.Call{Agent: "intruder", Connector: "c10", Action: "read_item"}},
	{"small transfer", call.Call{Agent: agentName, Connector: "c00", Action: "transfer", Args: map[string]any{"amount": int64(200), "region": "eu"}}},
	{"big eu transfer", call.Call{Agent: agentName, Connector: "c00", Action: "transfer", Args: map[string]any{"amount": int64(900), "region": "eu"}}},
	{"transfer over max", call.Call{Agent: agentName, Connector: "c00", Action: "transfer", Args: map[string]any{"amount": int64(20000), "region": "us"}}},
	{"transfer bad region", call.Call{Agent: agentName, Connector: "c00", Action: "transfer", Args: map[string]any{"amount": 99.5, "region": "apac"}}},
	{"transfer missing region", call.Call{Agent: agentName, Connector: "c00", Action: "transfer", Args: map[string]any{"amount": int64(100)}}},
	{"write bad target", call.Call{Agent: agentName, Connector: "c01", Action: "write_item", Args: map[string]any{"target": "Bad Name!"}}},
	{"write prod target", call.Call{Agent: agentName, Connector: "c01", Action: "write_item", Args: map[string]any{"target": "prod-db"}}},
	{"write in production", call.Call{Agent: agentName, Connector: "c01", Action: "write_item", Environment: "production", Args: map[string]any{"target": "web-1"}}},
	{"long message", call.Call{Agent: agentName, Connector: "c02", Action: "send_message", Args: map[string]any{"channel": "ops", "message": strings.Repeat("é", 81)}}},
	{"mass message", call.Call{Agent: agentName, Connector: "c02", Action: "send_message", Args: map[string]any{"channel": "eng", "message": "deploy done", "count": int64(500)}}},
	{"transfer asks", call.Call{Agent: agentName, Connector: "c33", Action: "transfer", Args: map[string]any{"amount": int64(50), "region": "us"}}},
	{"jobs frozen", call.Call{Agent: agentName, Connector: "c03", Action: "run_job", Args: map[string]any{"job": "nightly"}}},
	{"generated: allowed update", call.Call{Agent: agentName, Connector: "c10", Action: "update_item", Args: map[string]any{"id": "9", "text": "fixed"}}},
	{"generated: condition", call.Call{Agent: agentName, Connector: "c07", Action: "run_job", Args: map[string]any{"amount": int64(300), "region": "eu", "target": "batch-7"}}},
	{"generated: glob and constraints", call.Call{Agent: agentName, Connector: "c13", Action: "read_item", Args: map[string]any{"target": "report-1", "message": "q3", "amount": int64(100), "region": "us"}}},
	{"generated: production", call.Call{Agent: agentName, Connector: "c12", Action: "search", Environment: "production", Args: map[string]any{"amount": int64(100), "region": "eu"}}},
	{"generated: prod target", call.Call{Agent: agentName, Connector: "c37", Action: "update_item", Args: map[string]any{"amount": int64(2500), "region": "us", "target": "prod-api"}}},
}

// suite is everything a benchmark needs, built before any timing starts.
type suite struct {
	engine *policy.Engine
	query  rego.PreparedEvalQuery
	inputs []map[string]any // OPA's input for calls[i]
}

func newSuite(tb testing.TB, n int) *suite {
	tb.Helper()
	rs := rules(n)
	cfg, err := config.Parse([]config.File{{Name: "bench.yaml", Data: configYAML(rs)}})
	if err != nil {
		tb.Fatalf("rules=%d: config: %v", n, err)
	}
	if got := len(cfg.Policies[0].Rules); got != n {
		tb.Fatalf("rules=%d: config has %d rules", n, got)
	}
	q, err := rego.New(
		rego.Query("data.warden.decision"),
		rego.Module("warden.rego", regoModule(rs)),
		rego.Store(inmem.NewFromObject(map[string]any{"tables": regoTables()})),
	).PrepareForEval(context.Background())
	if err != nil {
		tb.Fatalf("rules=%d: rego: %v", n, err)
	}
	s := &suite{engine: policy.New(cfg), query: q}
	for _, c := range calls {
		s.inputs = append(s.inputs, opaInput(&c.call))
	}
	return s
}

// opaInput is the call as OPA's server would receive it: JSON decoded with
// UseNumber. (Handing OPA int64 instead makes it round-trip every number
// through encoding/json on each evaluation, which would be unfair to it.)
func opaInput(c *call.Call) map[string]any {
	args := make(map[string]any, len(c.Args))
	for k, v := range c.Args {
		switch x := v.(type) {
		case int64:
			args[k] = json.Number(strconv.FormatInt(x, 10))
		case float64:
			args[k] = json.Number(strconv.FormatFloat(x, 'g', -1, 64))
		default:
			args[k] = v
		}
	}
	return map[string]any{
		"tenant": c.Tenant, "agent": c.Agent, "connector": c.Connector, "action": c.Action,
		"environment": c.Environment, "args": args,
	}
}

func (s *suite) opa(ctx context.Context, in map[string]any) (call.Decision, []string, error) {
	rs, err := s.query.Eval(ctx, rego.EvalInput(in))
	if err != nil {
		return "", nil, err
	}
	if len(rs) != 1 || len(rs[0].Expressions) != 1 {
		return "", nil, fmt.Errorf("undefined decision: %v", rs)
	}
	out, ok := rs[0].Expressions[0].Value.(map[string]any)
	if !ok {
		return "", nil, fmt.Errorf("decision is %T", rs[0].Expressions[0].Value)
	}
	d, _ := out["decision"].(string)
	var names []string
	list, _ := out["rules"].([]any)
	for _, x := range list {
		s, _ := x.(string)
		names = append(names, s)
	}
	return call.Decision(d), names, nil
}

// ruleSet is rule names in a comparable form. Warden lists rules in config
// order and OPA's sets come back sorted, so order is not compared.
func ruleSet(names []string) []string {
	s := slices.Clone(names)
	slices.Sort(s)
	return slices.Compact(s)
}

func TestRegoAgreesWithEngine(t *testing.T) {
	ctx := context.Background()
	for _, n := range sizes {
		s := newSuite(t, n)
		seen := map[call.Decision]int{}
		for i, c := range calls {
			want := s.engine.Decide(&c.call)
			got, names, err := s.opa(ctx, s.inputs[i])
			if err != nil {
				t.Fatalf("rules=%d %s: opa: %v", n, c.name, err)
			}
			if got != want.Decision || !slices.Equal(ruleSet(names), ruleSet(want.Rules)) {
				t.Errorf("rules=%d %s: opa = %s %v, warden = %s %v (%s)", n, c.name, got, ruleSet(names), want.Decision, ruleSet(want.Rules), want.Reason)
			}
			seen[want.Decision]++
		}
		// The calls must exercise every outcome, or the benchmark would
		// measure only one path through the engines.
		for _, d := range call.Decisions {
			if seen[d] == 0 {
				t.Errorf("rules=%d: no call is decided %s", n, d)
			}
		}
	}
}

// TestOPAStaysOutOfTheBinary keeps the promise in the package comment.
func TestOPAStaysOutOfTheBinary(t *testing.T) {
	out, err := exec.Command("go", "list", "-deps", "github.com/warden-dev/warden/cmd/warden").CombinedOutput()
	if err != nil {
		t.Fatalf("go list: %v\n%s", err, out)
	}
	for _, dep := range strings.Fields(string(out)) {
		if strings.HasPrefix(dep, "github.com/open-policy-agent/") {
			t.Fatalf("cmd/warden depends on %s; OPA must stay a test-only dependency of bench/decide", dep)
		}
	}
}

var sink call.Decision

// BenchmarkDecide times one decision per iteration, cycling through calls.
//
// Per call, warden's Decide gets a prebuilt *call.Call (args already decoded)
// and does everything it does in production: agent, connector and permission
// lookups, a scan of the rules, CEL evaluation for matching rules with a
// condition, constraint checks, and the verdict's rule names and reason text.
//
// Per call, OPA's prepared query gets a prebuilt map[string]any (numbers as
// json.Number, as from OPA's own JSON decoding). It copies that map, converts
// it to an AST value, evaluates data.warden.decision with its rule index, and
// converts the result back to Go values; the benchmark then reads the
// decision out of the result set.
func BenchmarkDecide(b *testing.B) {
	ctx := context.Background()
	for _, n := range sizes {
		b.Run(fmt.Sprintf("rules=%d", n), func(b *testing.B) {
			s := newSuite(b, n)
			b.Run("engine=warden", func(b *testing.B) {
				b.ReportAllocs()
				i := 0
				for b.Loop() {
					sink = s.engine.Decide(&calls[i%len(calls)].call).Decision
					i++
				}
			})
			b.Run("engine=opa", func(b *testing.B) {
				b.ReportAllocs()
				i := 0
				for b.Loop() {
					d, _, err := s.opa(ctx, s.inputs[i%len(s.inputs)])
					if err != nil {
						b.Fatal(err)
					}
					sink = d
					i++
				}
			})
		})
	}
}
