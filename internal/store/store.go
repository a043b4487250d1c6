// Package store names what warden needs from its store, whichever backend
// holds it: the Store interface that the composition root (internal/app),
// the CLI and the benches use, the values it takes and returns, and its
// errors. The backends live beneath it: store/sqlite (one file, one
// machine) and store/postgres (one database, several stateless replicas).
// internal/app.OpenStore picks one by the --db value.
//
// Both backends pass the one conformance suite in store/storetest.
package store

import (
	"context"
	"crypto/ed25519"
	"errors"
	"time"

	"github.com/warden-dev/warden/internal/approval"
	"github.com/warden-dev/warden/internal/audit"
	"github.com/warden-dev/warden/internal/call"
	"github.com/warden-dev/warden/internal/dispatch"
	"github.com/warden-dev/warden/internal/secret"
)

// Store is everything warden keeps: tokens, calls and approvals, kill
// switches, config versions, local secrets, usage and the audit trail. It
// is safe for concurrent use. Close it when done.
type Store interface {
	dispatch.Store
	dispatch.ApprovalStore
	dispatch.KilledPendingStore
	dispatch.UsageStore
	secret.LocalStore

	// Audit trail.
	Append(ctx context.Context, r *audit.Record) error
	AuditRecords(ctx context.Context, f AuditFilter) ([]*audit.Record, error)
	AuditAll(ctx context.Context, fn func(*audit.Record) error) error
	Checkpoints(ctx context.Context) ([]audit.Checkpoint, error)
	VerifyAudit(ctx context.Context, pub ed25519.PublicKey) (audit.VerifyResult, error)
	// QueueDepth is how many appends wait for their commit (a metric).
	QueueDepth() int

	// Tokens.
	CreateToken(ctx context.Context, p call.Principal) (token string, info TokenInfo, err error)
	CreateApproverToken(ctx context.Context, p call.Principal, scope approval.Scope) (string, TokenInfo, error)
	Authenticate(ctx context.Context, token string) (call.Principal, error)
	RevokeToken(ctx context.Context, id string) error
	RevokeAgentTokens(ctx context.Context, tenant, agent string) (int, error)
	Tokens(ctx context.Context) ([]TokenInfo, error)
	ApproverByName(ctx context.Context, name string) (call.Principal, error)

	// Approvals beyond what the dispatcher needs.
	ApprovalCallsSince(ctx context.Context, since time.Time) ([]*dispatch.State, error)
	PendingCount(ctx context.Context) (int, error)

	// Kill switches.
	Kill(ctx context.Context, tenant, agent, by, why string) (bool, error)
	Revive(ctx context.Context, tenant, agent string) (bool, error)
	KillSwitches(ctx context.Context) ([]KillSwitch, error)

	// Config versions.
	ApplyConfig(ctx context.Context, v ConfigVersion, by string) (created, activated bool, err error)
	RollbackConfig(ctx context.Context, to, by string) (from, target string, err error)
	LiveConfig(ctx context.Context) (string, error)
	LiveActivation(ctx context.Context) (*Activation, error)
	ConfigVersion(ctx context.Context, prefix string) (*ConfigVersion, error)
	ConfigVersions(ctx context.Context) ([]ConfigVersion, error)

	// local:// secrets.
	CreateSecret(ctx context.Context, name string, seal SealFunc) (*secret.Sealed, error)
	RotateSecret(ctx context.Context, name string, seal SealFunc) (*secret.Sealed, error)
	RevokeSecret(ctx context.Context, name string) error
	Secrets(ctx context.Context) ([]*secret.Sealed, error)
	RekeySecrets(ctx context.Context, newKeyID string, reseal func(*secret.Sealed) (*secret.Sealed, error)) (int, error)

	// The console's dashboard.
	Stats(ctx context.Context, q StatsQuery, now time.Time) (*Stats, error)

	// Ping checks the database answers (GET /readyz).
	Ping(ctx context.Context) error
	// Close flushes the audit writer and closes the database.
	Close() error
}

// Events is the optional capability of a store shared by several
// processes that tells each of them what the others changed (the postgres
// store's LISTEN/NOTIFY): Subscribe calls fn, on its own goroutine, with
// each event until ctx ends, and then returns. Events are hints for waking up early; a process must
// still re-read periodically, since an event can be missed while the
// connection is down (fn then gets EventResync once it is back).
type Events interface {
	Subscribe(ctx context.Context, fn func(Event))
}

// Event is one change announced by a store: a Kind and, for EventCall, the
// call's id.
type Event struct {
	Kind string
	ID   string
}

// Kinds of Event.
const (
	EventConfig = "config" // a config version was applied or rolled back
	EventKill   = "kill"   // a kill switch was set or cleared
	EventToken  = "token"  // a token was revoked
	EventSecret = "secret" // a secret was rotated or revoked
	EventCall   = "call"   // a call's state changed (ID names it)
	// EventApproved: a call became approved (its claim for execution is
	// open to any replica).
	EventApproved = "approved"
	// EventResync: events may have been missed (the listening connection
	// was re-established); re-read everything cached.
	EventResync = "resync"
)

// Errors every backend returns (wrapped, with errors.Is).
var (
	// ErrNotFound: a token, call, version or record does not exist.
	ErrNotFound = errors.New("not found")
	// ErrAmbiguous: a version prefix names more than one version.
	ErrAmbiguous = errors.New("ambiguous version prefix")
	// ErrNoPrevious: nothing to roll back to.
	ErrNoPrevious = errors.New("no earlier live version to roll back to")
	// ErrNoLive: no config version is live.
	ErrNoLive = errors.New("no config version is live")
	// ErrSecretExists: creating a secret that already exists.
	ErrSecretExists = errors.New("secret already exists; use rotate to replace its value")
	// ErrClosed: an operation on a closed Store.
	ErrClosed = errors.New("store is closed")
)

// TokenInfo describes a token, never its value.
type TokenInfo struct {
	ID        string     `json:"id"`
	Role      call.Role  `json:"role"`
	Tenant    string     `json:"tenant"`
	Agent     string     `json:"agent,omitempty"`
	Name      string     `json:"name,omitempty"`
	CreatedAt time.Time  `json:"created_at"`
	RevokedAt *time.Time `json:"revoked_at,omitempty"`
}

// ConfigVersion is one stored config.
type ConfigVersion struct {
	Version   string            // content hash (config.Config.Version)
	Files     map[string]string // file name → content
	Author    string
	Message   string
	CreatedAt time.Time
	Live      bool // filled by ConfigVersions
}

// Activation is one change of the live config version.
type Activation struct {
	Version string
	Kind    string // apply, rollback
	By      string
	At      time.Time
}

// KillSwitch is one set kill switch: Agent "*" stops a whole tenant,
// Tenant and Agent "*" everything.
type KillSwitch struct {
	Tenant, Agent, By, Why string
	At                     time.Time
}

// SealFunc seals the value of a secret's given version.
type SealFunc func(version int64) (*secret.Sealed, error)

// AuditFilter selects audit records. Zero fields select everything.
type AuditFilter struct {
	Tenant   string
	Agent    string
	Decision string
	CallID   string
	Since    time.Time // records at or after Since
	Until    time.Time // records before Until
	AfterSeq int64     // records with seq > AfterSeq (paging forward, tailing)
	// BeforeSeq, if positive, selects records with seq < BeforeSeq (paging
	// backward with Desc).
	BeforeSeq int64
	Limit     int  // at most this many; 0 means no limit
	Desc      bool // newest first; oldest first otherwise
}

// MaxStatsRecords bounds how many audit records one Stats call reads: the
// newest ones of the window. Stats.Truncated says the window had more.
const MaxStatsRecords = 100_000

// MaxLatencies bounds the approval votes Stats reads for the latency.
const MaxLatencies = 10_000

// MaxKillSwitches bounds KillSwitches; the table holds one row per switch
// someone set by hand.
const MaxKillSwitches = 1000

// StatsQuery selects the window Stats summarises.
type StatsQuery struct {
	Tenant string        // "" for every tenant
	Since  time.Time     // the window's start; it ends now
	Bucket time.Duration // width of the call-volume buckets, counted from Since
}

// Outcomes counts a connector's executed calls by how they ended.
type Outcomes struct {
	Succeeded, Failed int64
}

// Usage is what one agent reported spending.
type Usage struct {
	CostUSD float64
	Tokens  int64
}

// Stats summarises the audit trail over a window.
type Stats struct {
	Calls      int64               // decision and decision_only records: one per call
	Volume     []int64             // calls per Bucket from Since, oldest first
	Decisions  map[string]int64    // calls by decision
	Connectors map[string]Outcomes // executed calls by connector (outcome and reported_outcome records)
	// ApprovalLatency holds, for each approval or denial vote, the time
	// from the call's decision record to the vote (newest MaxLatencies).
	ApprovalLatency []time.Duration
	Expired         int64            // approval waits that ran out
	Usage           map[string]Usage // by tenant/agent, from records that report cost or tokens
	Truncated       bool             // the window held more than MaxStatsRecords records
}
