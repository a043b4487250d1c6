package config

import (
	"github.com/warden-dev/warden/internal/connector/template"
	"github.com/warden-dev/warden/internal/schema"
	"go.yaml.in/yaml/v3"
)

// template checks a connector template and returns the credentials it
// names, to be checked against the connector's credentials map.
func (d *decoder) template(n *yaml.Node, s, what string) []credUse {
	t, err := template.Parse(s)
	if err != nil {
		d.errorf(n, "%s: %v", what, err)
		return nil
	}
	var uses []credUse
	for _, name := range t.Credentials() {
		uses = append(uses, credUse{pos: d.pos(n), name: name})
	}
	return uses
}

// checkSchema compiles an action's input_schema, so that an unsupported or
// malformed keyword is a config error rather than a silently unenforced
// constraint.
func checkSchema(m map[string]any) error {
	_, err := schema.Compile(m)
	return err
}
