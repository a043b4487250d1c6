package mcp

import (
	"encoding/json"
	"strings"
	"testing"

	sdk "github.com/modelcontextprotocol/go-sdk/mcp"

	"github.com/warden-dev/warden/internal/config"
)

func TestDescribe(t *testing.T) {
	conn := &config.Connector{Name: "files", Description: "project files"}
	declSchema := map[string]any{"type": "object", "properties": map[string]any{"p": map[string]any{"type": "string"}}}
	upSchema := json.RawMessage(`{"type":"object","properties":{"path":{"type":"string"}}}`)
	for _, tc := range []struct {
		name       string
		mode       config.Mode
		decl       *config.Action
		up         *sdk.Tool
		wantDesc   string
		wantSchema string
	}{
		{"config first", config.On, &config.Action{Description: "Read it", InputSchema: declSchema},
			&sdk.Tool{Description: "upstream's", InputSchema: upSchema}, "Read it", `"p"`},
		{"then the upstream's", config.On, &config.Action{}, &sdk.Tool{Description: "upstream's", InputSchema: upSchema}, "upstream's", `"path"`},
		{"then generic", config.On, nil, nil, "read on files (project files)", `{"type":"object"}`},
		{"a non-object upstream schema is replaced", config.On, nil, &sdk.Tool{InputSchema: json.RawMessage(`{"type":"string"}`)}, "read on files", `{"type":"object"}`},
		{"ask says so", config.Ask, nil, nil, "needs human approval", `{"type":"object"}`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got := describe(conn, tool{connector: "files", action: "read", mode: tc.mode}, tc.decl, tc.up)
			if got.Name != "files__read" {
				t.Errorf("name = %q", got.Name)
			}
			if !strings.Contains(got.Description, tc.wantDesc) {
				t.Errorf("description = %q, want it to contain %q", got.Description, tc.wantDesc)
			}
			if tc.mode != config.Ask && strings.Contains(got.Description, "approval") {
				t.Errorf("an on tool's description mentions approval: %q", got.Description)
			}
			b, _ := json.Marshal(got.InputSchema)
			if !strings.Contains(string(b), tc.wantSchema) {
				t.Errorf("schema = %s, want it to contain %s", b, tc.wantSchema)
			}
		})
	}
}
