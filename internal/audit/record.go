// Package audit is warden's tamper-evident record of what agents did: the
// Record written for every decision and every outcome, its canonical byte
// encoding, the SHA-256 hash chain that links each record to the one before
// it, Ed25519-signed checkpoints over that chain, and Verify, which proves a
// sequence of records and checkpoints is intact or names the first record
// where it is not.
//
// The package is pure: it depends on the standard library only and does no
// I/O apart from reading and creating the checkpoint signing key file. Where
// records are stored (internal/store/...) and who writes them (the dispatcher,
// through an interface it owns) live elsewhere.
//
// # Chain
//
// Records are numbered from 1 with no gaps (Record.Seq). Each carries the hash
// of the record before it (PrevHash; GenesisHash for seq 1) and its own Hash,
// the lowercase hex SHA-256 of its canonical encoding. The canonical encoding
// covers every field except Hash, including Seq and PrevHash, so changing,
// removing, inserting or reordering any record breaks the chain at that
// record.
//
// A store that can be rewritten can also re-hash the chain, so every so often
// a Checkpoint (seq, hash, time) is signed with a key the store does not hold.
// Verify checks every checkpoint's signature and that the record at its seq
// still has the signed hash, which also detects a tail cut off after a
// checkpoint. What Verify cannot detect, by construction, is a rewrite of the
// records after the last checkpoint together with their hashes, nor the
// removal of checkpoints and records together; keep checkpoints (or the last
// one) somewhere the database's writer cannot reach if that matters.
package audit

import (
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"strings"
	"time"
)

// GenesisHash is the PrevHash of the first record of a chain.
var GenesisHash = strings.Repeat("0", 64)

// Kinds of record. A call normally produces two records sharing CallID: the
// decision, written durably before anything runs, and the outcome after.
const (
	KindDecision        = "decision"         // a decision, written before the call runs
	KindOutcome         = "outcome"          // what happened when warden ran the call
	KindDecisionOnly    = "decision_only"    // POST /v1/decide: decided, nothing executed
	KindReportedOutcome = "reported_outcome" // a runtime reported what it did after decision_only
	KindExpired         = "expired"          // an approval wait that ran out
	KindApproval        = "approval"         // an approver approved (approval set); with enough approvals the call is approved
	KindDenial          = "denial"           // an approver denied (approval set): the call is refused
	KindStarted         = "started"          // an approved call claimed for execution, written before it runs
	KindUsage           = "usage"            // POST /v1/usage: tokens and cost an agent's run reported (no call)
)

// Outcomes of a call, set on outcome records and empty on decision records.
const (
	OutcomeSucceeded = "succeeded"
	OutcomeFailed    = "failed"
	OutcomeRefused   = "refused"
	OutcomeExpired   = "expired"
)

// Front ends a call can arrive through.
const (
	FrontEndREST = "rest"
	FrontEndMCP  = "mcp"
	FrontEndHook = "hook"
)

// Record is one entry of the audit trail. Args must already be redacted by
// the caller: the audit package hashes and stores whatever it is given.
//
// Seq, PrevHash and Hash are set by Seal, normally by the store as it
// appends; everything else is set by the writer of the record.
type Record struct {
	Seq             int64           `json:"seq"`
	ID              string          `json:"id"`
	Time            time.Time       `json:"time"`
	Tenant          string          `json:"tenant"`
	Agent           string          `json:"agent"`
	RunID           string          `json:"run_id"`
	Trigger         string          `json:"trigger"`
	FrontEnd        string          `json:"front_end"`
	Kind            string          `json:"kind"`
	CallID          string          `json:"call_id"`
	Connector       string          `json:"connector"`
	Action          string          `json:"action"`
	ActionType      string          `json:"action_type"`
	Args            json.RawMessage `json:"args"`
	Environment     string          `json:"environment"`
	Decision        string          `json:"decision"`
	Rules           []string        `json:"rules"`
	Reason          string          `json:"reason"`
	ConfigVersion   string          `json:"config_version"`
	Approval        *Approval       `json:"approval,omitempty"`
	CredentialsUsed []string        `json:"credentials_used"`
	Outcome         string          `json:"outcome"`
	Error           string          `json:"error"`
	ResultDigest    string          `json:"result_digest"`
	DurationMS      int64           `json:"duration_ms"`
	Tokens          int64           `json:"tokens"`
	CostUSD         float64         `json:"cost_usd"`
	PrevHash        string          `json:"prev_hash"`
	Hash            string          `json:"hash"`
}

// Approval says who let a REQUIRE_APPROVAL call through (or refused it).
type Approval struct {
	ID        string    `json:"id"`
	Approver  string    `json:"approver"`
	Channel   string    `json:"channel,omitempty"` // cli, web, slack, api
	DecidedAt time.Time `json:"decided_at"`
	Comment   string    `json:"comment"`
}

// Canonical returns the deterministic encoding the record's hash is computed
// over: a JSON object holding every field except hash (seq and prev_hash
// included), with
//
//   - keys sorted by their UTF-8 bytes, at every level, args included;
//   - no insignificant whitespace;
//   - strings escaped minimally: only '"', '\\', control characters (as \b
//     \f \n \r \t or \u00XX) and U+2028/U+2029; invalid UTF-8 becomes U+FFFD;
//     '<', '>' and '&' are not escaped;
//   - times in UTC, RFC 3339 with nanoseconds and trailing zeros dropped;
//   - numbers inside args kept as their literal text; cost_usd in the
//     shortest form that parses back to the same float64;
//   - absent args as null, absent rules and credentials_used as [], absent
//     approval as null; approval.channel only when not empty.
//
// Decoding the encoding back into a Record and encoding it again yields the
// same bytes, which is what lets a verifier recompute hashes from storage.
func (r *Record) Canonical() ([]byte, error) {
	var e encoder
	e.buf = make([]byte, 0, 512+len(r.Args))
	// Keys in sorted order. TestCanonicalKeysSorted keeps this list honest.
	e.begin()
	e.key("action")
	e.str(r.Action)
	e.key("action_type")
	e.str(r.ActionType)
	e.key("agent")
	e.str(r.Agent)
	e.key("approval")
	if r.Approval == nil {
		e.raw("null")
	} else {
		e.begin()
		e.key("approver")
		e.str(r.Approval.Approver)
		if r.Approval.Channel != "" {
			// Added after the format was fixed: left out when empty, so
			// that records written before it keep their hashes.
			e.key("channel")
			e.str(r.Approval.Channel)
		}
		e.key("comment")
		e.str(r.Approval.Comment)
		e.key("decided_at")
		if err := e.time(r.Approval.DecidedAt); err != nil {
			return nil, fmt.Errorf("audit: canonical approval.decided_at: %w", err)
		}
		e.key("id")
		e.str(r.Approval.ID)
		e.end()
	}
	e.key("args")
	if err := e.args(r.Args); err != nil {
		return nil, fmt.Errorf("audit: canonical args: %w", err)
	}
	e.key("call_id")
	e.str(r.CallID)
	e.key("config_version")
	e.str(r.ConfigVersion)
	e.key("connector")
	e.str(r.Connector)
	e.key("cost_usd")
	if err := e.float(r.CostUSD); err != nil {
		return nil, fmt.Errorf("audit: canonical cost_usd: %w", err)
	}
	e.key("credentials_used")
	e.strs(r.CredentialsUsed)
	e.key("decision")
	e.str(r.Decision)
	e.key("duration_ms")
	e.int(r.DurationMS)
	e.key("environment")
	e.str(r.Environment)
	e.key("error")
	e.str(r.Error)
	e.key("front_end")
	e.str(r.FrontEnd)
	e.key("id")
	e.str(r.ID)
	e.key("kind")
	e.str(r.Kind)
	e.key("outcome")
	e.str(r.Outcome)
	e.key("prev_hash")
	e.str(r.PrevHash)
	e.key("reason")
	e.str(r.Reason)
	e.key("result_digest")
	e.str(r.ResultDigest)
	e.key("rules")
	e.strs(r.Rules)
	e.key("run_id")
	e.str(r.RunID)
	e.key("seq")
	e.int(r.Seq)
	e.key("tenant")
	e.str(r.Tenant)
	e.key("time")
	if err := e.time(r.Time); err != nil {
		return nil, fmt.Errorf("audit: canonical time: %w", err)
	}
	e.key("tokens")
	e.int(r.Tokens)
	e.key("trigger")
	e.str(r.Trigger)
	e.end()
	return e.buf, nil
}

// ComputeHash returns the hash the record should carry: the lowercase hex
// SHA-256 of its canonical encoding. It does not look at r.Hash.
func (r *Record) ComputeHash() (string, error) {
	b, err := r.Canonical()
	if err != nil {
		return "", err
	}
	return hashOf(b), nil
}

// Seal places the record in the chain: it sets PrevHash and Seq and then
// Hash over the result. On error the record is left as it was.
func (r *Record) Seal(prevHash string, seq int64) error {
	_, err := r.SealCanonical(prevHash, seq)
	return err
}

// SealCanonical is Seal that also returns the canonical encoding the hash was
// computed over, for stores that keep it (and so need not encode twice).
func (r *Record) SealCanonical(prevHash string, seq int64) ([]byte, error) {
	if seq < 1 {
		return nil, fmt.Errorf("audit: seal: seq %d is not positive", seq)
	}
	if !isHash(prevHash) {
		return nil, fmt.Errorf("audit: seal: prev hash %q is not 64 lowercase hex digits", prevHash)
	}
	oldPrev, oldSeq := r.PrevHash, r.Seq
	r.PrevHash, r.Seq = prevHash, seq
	b, err := r.Canonical()
	if err != nil {
		r.PrevHash, r.Seq = oldPrev, oldSeq
		return nil, fmt.Errorf("audit: seal seq %d: %w", seq, err)
	}
	r.Hash = hashOf(b)
	return b, nil
}

// NewID returns a new random record id: 32 lowercase hex digits (128 bits).
func NewID() string {
	var b [16]byte
	_, _ = rand.Read(b[:]) // crypto/rand.Read never fails
	return hex.EncodeToString(b[:])
}

func hashOf(b []byte) string {
	sum := sha256.Sum256(b)
	return hex.EncodeToString(sum[:])
}

// isHash reports whether s looks like a hash this package produces.
func isHash(s string) bool {
	if len(s) != 64 {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		if (c < '0' || c > '9') && (c < 'a' || c > 'f') {
			return false
		}
	}
	return true
}
