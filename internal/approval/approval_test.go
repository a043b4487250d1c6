package approval

import (
	"strings"
	"testing"

	"github.com/warden-dev/warden/internal/call"
)

func TestAuthorize(t *testing.T) {
	subj := Subject{Tenant: "acme", Agent: "bot", Connector: "stripe", Trigger: "user:alice"}
	named := New("apr_1", &call.ApprovalSpec{Approvers: [][]string{{"bob", "ops-*"}, {"ops-*", "bob"}}, MinApprovals: 2})
	anyone := New("apr_2", nil)
	appr := func(name, tenant string) call.Principal {
		return call.Principal{Role: call.RoleApprover, Name: name, Tenant: tenant, TokenID: "tok_" + name}
	}
	for _, tc := range []struct {
		name  string
		req   *Request
		p     call.Principal
		scope Scope
		want  string // "" allowed, else a part of the refusal
	}{
		{"any approver in tenant", anyone, appr("bob", "acme"), Scope{}, ""},
		{"all-tenant approver", anyone, appr("bob", ""), Scope{}, ""},
		{"agent", anyone, call.Principal{Role: call.RoleAgent, Tenant: "acme", Agent: "bot"}, Scope{}, "agent can never approve"},
		{"admin", anyone, call.Principal{Role: call.RoleAdmin}, Scope{}, "only approver tokens"},
		{"other tenant", anyone, appr("bob", "globex"), Scope{}, "tenant"},
		{"agent scope", anyone, appr("bob", "acme"), Scope{Agents: []string{"pr-*"}}, "outside this approver's scope"},
		{"connector scope", anyone, appr("bob", "acme"), Scope{Connectors: []string{"stri*"}}, ""},
		{"self by name", anyone, appr("alice", "acme"), Scope{}, "own identity"},
		{"self case-insensitive", anyone, appr("Alice", "acme"), Scope{}, "own identity"},
		{"named approver", named, appr("ops-dan", "acme"), Scope{}, ""},
		{"not named", named, appr("carol", "acme"), Scope{}, "not among the approvers"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			err := tc.req.Authorize(tc.p, tc.scope, subj)
			switch {
			case tc.want == "" && err != nil:
				t.Fatalf("got %v, want allowed", err)
			case tc.want != "" && (err == nil || !strings.Contains(err.Error(), tc.want)):
				t.Fatalf("got %v, want a refusal mentioning %q", err, tc.want)
			}
		})
	}
	if named.MinApprovals != 2 || anyone.MinApprovals != 1 {
		t.Fatalf("min approvals: got %d and %d, want 2 and 1", named.MinApprovals, anyone.MinApprovals)
	}
}

func TestScopeValidate(t *testing.T) {
	if err := (Scope{Agents: []string{"ok-*", "[bad"}}).Validate(); err == nil || !strings.Contains(err.Error(), `"[bad"`) {
		t.Fatalf("got %v, want the bad glob named", err)
	}
}
