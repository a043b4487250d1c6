package config

import (
	"bytes"
	"errors"
	"io"
	"time"

	"github.com/warden-dev/warden/internal/call"
	"go.yaml.in/yaml/v3"
)

// TestCase is one case of a policy test file: a call and the decision it
// must get.
type TestCase struct {
	Pos    Pos
	Name   string
	Call   call.Call
	Expect struct {
		Decision call.Decision
		Rules    []string // nil: not checked
	}
}

// ParseTests parses a policy test file:
//
//	tests:
//	  - name: ...
//	    call: {agent, connector, action, args, environment, tenant, run_id, time}
//	    expect: {decision, rules}
//
// Problems are returned as Errors with positions.
func ParseTests(f File) ([]*TestCase, error) {
	var errs Errors
	d := &decoder{file: f.Name, errs: &errs}
	var doc yaml.Node
	if err := yaml.NewDecoder(bytes.NewReader(f.Data)).Decode(&doc); err != nil {
		if errors.Is(err, io.EOF) {
			return nil, Errors{{Pos: Pos{File: f.Name}, Msg: "empty test file; expected tests: [...]"}}
		}
		return nil, Errors{{Pos: Pos{File: f.Name}, Msg: "invalid YAML: " + err.Error()}}
	}
	if len(doc.Content) == 0 {
		return nil, Errors{{Pos: Pos{File: f.Name}, Msg: "empty test file; expected tests: [...]"}}
	}
	var cases []*TestCase
	d.object(doc.Content[0], "test file", field{key: "tests", required: true, set: func(n *yaml.Node) {
		n = d.resolve(n)
		if n == nil {
			return
		}
		if n.Kind != yaml.SequenceNode {
			d.errorf(n, "tests must be a list, got %s", kindName(n))
			return
		}
		for _, tn := range n.Content {
			if tc := d.testCase(tn); tc != nil {
				cases = append(cases, tc)
			}
		}
	}})
	if len(errs) > 0 {
		return nil, errs.sorted()
	}
	return cases, nil
}

func (d *decoder) testCase(n *yaml.Node) *TestCase {
	tc := &TestCase{Pos: d.pos(d.resolve(n))}
	c := &tc.Call
	var decision string
	d.object(n, "test",
		field{key: "name", required: true, set: d.strInto(&tc.Name, "test name")},
		field{key: "call", required: true, set: func(v *yaml.Node) {
			d.object(v, "call",
				field{key: "agent", required: true, set: d.strInto(&c.Agent, "call.agent")},
				field{key: "connector", required: true, set: d.strInto(&c.Connector, "call.connector")},
				field{key: "action", required: true, set: d.strInto(&c.Action, "call.action")},
				field{key: "tenant", set: d.strInto(&c.Tenant, "call.tenant")},
				field{key: "environment", set: d.strInto(&c.Environment, "call.environment")},
				field{key: "run_id", set: d.strInto(&c.RunID, "call.run_id")},
				field{key: "time", set: func(v *yaml.Node) {
					s, ok := d.str(v, "call.time")
					if !ok {
						return
					}
					t, err := time.Parse(time.RFC3339, s)
					if err != nil {
						d.errorf(d.resolve(v), "call.time must be an RFC 3339 time such as 2026-11-21T03:00:00Z, got %q", s)
						return
					}
					c.Time = t
				}},
				field{key: "args", set: func(v *yaml.Node) {
					x, ok := d.value(v, "call.args")
					if !ok {
						return
					}
					m, isMap := x.(map[string]any)
					if !isMap {
						d.errorf(d.resolve(v), "call.args must be a mapping")
						return
					}
					c.Args = m
				}},
			)
		}},
		field{key: "expect", required: true, set: func(v *yaml.Node) {
			d.object(v, "expect",
				field{key: "decision", required: true, set: func(v *yaml.Node) {
					decision, _ = d.str(v, "expect.decision")
					if decision != "" && !call.Decision(decision).Valid() {
						d.errorf(d.resolve(v), "unknown decision %q; expected ALLOW, ALLOW_WITH_CONSTRAINTS, REQUIRE_APPROVAL or DENY", decision)
					}
				}},
				field{key: "rules", set: func(v *yaml.Node) {
					tc.Expect.Rules = d.strList(v, "expect.rules")
					if tc.Expect.Rules == nil {
						tc.Expect.Rules = []string{}
					}
				}},
			)
		}},
	)
	tc.Expect.Decision = call.Decision(decision)
	if tc.Call.Args == nil {
		tc.Call.Args = map[string]any{}
	}
	return tc
}
