package config

import (
	"fmt"
	"regexp"

	"github.com/warden-dev/warden/internal/connector/template"
	"go.yaml.in/yaml/v3"
)

// ExecAction holds an exec action's own keys. Strings are templates.
type ExecAction struct {
	// Command is the argv; each element is rendered on its own, so an
	// argument value can never become several elements. With Shell, it is
	// one element: a script run by /bin/sh -c, in which every {args.x}
	// is substituted as one single-quoted shell word.
	Command []string          `json:"command"`
	Shell   bool              `json:"shell,omitempty"`
	Env     map[string]string `json:"env,omitempty"`
	// Limits override the connector's sandbox limits, field by field.
	Limits SandboxLimits `json:"limits"`
}

// execEnvName is what an exec action's environment variable may be named.
var execEnvName = regexp.MustCompile(`^[A-Za-z_][A-Za-z0-9_]*$`)

// execActionKeys collects an action's exec keys while it is read.
type execActionKeys struct {
	a     ExecAction
	nodes []*yaml.Node // every exec key's value, for "wrong type" errors
	cmd   *yaml.Node
	// cmdBad: the command was reported already (not a list).
	cmdBad bool
	uses   []credUse
}

// execActionFields are the exec keys of an action.
func (d *decoder) execActionFields(k *execActionKeys, what string) []field {
	mk := func(key string, set func(v *yaml.Node)) field {
		return field{key: key, set: func(v *yaml.Node) { k.nodes = append(k.nodes, v); set(v) }}
	}
	return []field{
		mk("command", func(v *yaml.Node) {
			k.cmd = v
			rv := d.resolve(v)
			if rv == nil {
				return
			}
			if rv.Kind != yaml.SequenceNode {
				d.errorf(rv, "%s command must be a list of strings (the argv), got %s", what, kindName(rv))
				k.cmd = nil
				k.cmdBad = true
				return
			}
			for i, c := range rv.Content {
				s, ok := d.str(c, fmt.Sprintf("%s command[%d]", what, i))
				if !ok {
					continue
				}
				k.a.Command = append(k.a.Command, s)
				t, err := template.Parse(s)
				if err != nil {
					d.errorf(d.resolve(c), "%s command[%d]: %v", what, i, err)
					continue
				}
				if len(t.Credentials()) > 0 {
					d.errorf(d.resolve(c), "%s command[%d]: {credentials.%s} is not allowed in a command (command lines are visible to every process on the host); pass it in env", what, i, t.Credentials()[0])
				}
			}
		}),
		mk("shell", func(v *yaml.Node) { k.a.Shell, _ = d.boolean(v, what+" shell") }),
		mk("env", func(v *yaml.Node) {
			k.a.Env = d.stringMap(v, what+" env", func(kn, vn *yaml.Node, s string) {
				if !execEnvName.MatchString(kn.Value) {
					d.errorf(kn, "%s env: %q is not a valid environment variable name", what, kn.Value)
				}
				k.uses = append(k.uses, d.template(vn, s, what+" env."+kn.Value)...)
			})
		}),
		mk("limits", func(v *yaml.Node) { k.a.Limits = d.sandboxLimits(v, what+" limits") }),
	}
}

// finishExecAction checks an action's exec keys once the connector's type
// is known: an exec action needs a command; other types take none of them.
func (d *decoder) finishExecAction(c *Connector, a *Action, k *execActionKeys, keyNode *yaml.Node) []credUse {
	what := "action " + a.Name
	if c.Type != TypeExec {
		for _, n := range k.nodes {
			d.errorf(d.resolve(n), "%s: command, shell, env and limits belong to exec connectors, not %s", what, c.Type)
		}
		return nil
	}
	switch {
	case k.cmdBad:
	case k.cmd == nil:
		d.errorf(keyNode, "%s is missing required key \"command\" (the argv, such as [grep, -rn, \"{args.pattern}\", .])", what)
	case len(k.a.Command) == 0:
		d.errorf(d.resolve(k.cmd), "%s command is empty", what)
	case k.a.Shell && len(k.a.Command) != 1:
		d.errorf(d.resolve(k.cmd), "%s: with shell: true, command is one element, the script (run as /bin/sh -c SCRIPT)", what)
	case !k.a.Shell:
		if t, err := template.Parse(k.a.Command[0]); err == nil && !t.IsLiteral() {
			d.errorf(d.resolve(k.cmd), "%s command[0] must be a fixed program, not a template", what)
		}
	}
	a.Exec = &k.a
	return k.uses
}
