package audit

import (
	"bytes"
	"encoding/json"
	"flag"
	"math"
	"os"
	"path/filepath"
	"reflect"
	"slices"
	"strings"
	"testing"
	"time"
)

var update = flag.Bool("update", false, "rewrite golden files")

// fullRecord has every field set, with values chosen to exercise the
// encoding: nested args with unsorted keys, numbers in several literal forms,
// escapes, non-ASCII text and a time outside UTC.
func fullRecord() *Record {
	paris := time.FixedZone("CET", 3600)
	return &Record{
		ID:         "rec_01J9Z8Q4F7T3",
		Time:       time.Date(2026, 11, 3, 4, 5, 6, 789000000, paris),
		Tenant:     "acme",
		Agent:      "pr-reviewer",
		RunID:      "run-7",
		Trigger:    "schedule:nightly",
		FrontEnd:   FrontEndREST,
		Kind:       KindOutcome,
		CallID:     "call_42",
		Connector:  "github",
		Action:     "create_pr",
		ActionType: "write",
		Args: json.RawMessage(`{
			"title": "Fix <b>bold</b> & \"quotes\"",
			"labels": ["a", "b"],
			"amount": 1.50,
			"big": 12345678901234567890,
			"exp": 1E3,
			"nested": {"z": null, "a": true, "m": "line\nbreak\u0001"},
			"unicode": "h\u00e9llo \u2028 wörld"
		}`),
		Environment:   "production",
		Decision:      "REQUIRE_APPROVAL",
		Rules:         []string{"production-writes", "big-refunds"},
		Reason:        "writes to production need a human",
		ConfigVersion: "sha256:3f2a",
		Approval: &Approval{
			ID:        "apr_9",
			Approver:  "alice@acme.example",
			DecidedAt: time.Date(2026, 11, 3, 3, 4, 0, 0, time.UTC),
			Comment:   "ok, ship it",
		},
		CredentialsUsed: []string{"vault://secret/data/github#token"},
		Outcome:         OutcomeSucceeded,
		Error:           "",
		ResultDigest:    "sha256:9c1e",
		DurationMS:      1234,
		Tokens:          5678,
		CostUSD:         0.0125,
	}
}

func TestCanonicalGolden(t *testing.T) {
	r := fullRecord()
	if err := r.Seal(GenesisHash, 42); err != nil {
		t.Fatal(err)
	}
	got, err := r.Canonical()
	if err != nil {
		t.Fatal(err)
	}
	got = append(got, '\n')
	golden := filepath.Join("testdata", "canonical.golden")
	if *update {
		if err := os.WriteFile(golden, got, 0o644); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join("testdata", "canonical.hash"), []byte(r.Hash+"\n"), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	want, err := os.ReadFile(golden)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(got, want) {
		t.Errorf("canonical encoding changed; every stored hash would break.\ngot:  %s\nwant: %s", got, want)
	}
	wantHash, err := os.ReadFile(filepath.Join("testdata", "canonical.hash"))
	if err != nil {
		t.Fatal(err)
	}
	if r.Hash != strings.TrimSpace(string(wantHash)) {
		t.Errorf("hash = %s, want %s", r.Hash, wantHash)
	}
}

// TestCanonicalCoversEveryField keeps Canonical in step with Record: every
// JSON field but hash appears, in sorted order, and nothing else does.
func TestCanonicalCoversEveryField(t *testing.T) {
	var want []string
	rt := reflect.TypeFor[Record]()
	for i := range rt.NumField() {
		name, _, _ := strings.Cut(rt.Field(i).Tag.Get("json"), ",")
		if name != "hash" {
			want = append(want, name)
		}
	}
	slices.Sort(want)

	b, err := fullRecord().Canonical()
	if err != nil {
		t.Fatal(err)
	}
	got := topLevelKeys(t, b)
	if !slices.Equal(got, want) {
		t.Errorf("canonical keys:\ngot  %v\nwant %v", got, want)
	}
}

// topLevelKeys returns the keys of the JSON object b in the order they appear.
func topLevelKeys(t *testing.T, b []byte) []string {
	t.Helper()
	dec := json.NewDecoder(bytes.NewReader(b))
	if tok, err := dec.Token(); err != nil || tok != json.Delim('{') {
		t.Fatalf("not an object: %s", b)
	}
	var keys []string
	for dec.More() {
		tok, err := dec.Token()
		if err != nil {
			t.Fatal(err)
		}
		keys = append(keys, tok.(string))
		var skip json.RawMessage
		if err := dec.Decode(&skip); err != nil {
			t.Fatal(err)
		}
	}
	return keys
}

// TestCanonicalRoundTrip checks the property storage relies on: decoding a
// canonical encoding and encoding again gives the same bytes.
func TestCanonicalRoundTrip(t *testing.T) {
	tests := []struct {
		name string
		rec  *Record
	}{
		{"full", fullRecord()},
		{"zero", &Record{}},
		{"empty slices", &Record{Rules: []string{}, CredentialsUsed: []string{}, Args: json.RawMessage("null")}},
		{"invalid utf8", &Record{Agent: "bad\xffbyte", Args: json.RawMessage("{\"k\xfe\":\"v\xff\"}")}},
		{"awkward floats", &Record{CostUSD: 1e-9, Tokens: -1, DurationMS: math.MaxInt64}},
		{"huge float", &Record{CostUSD: 1.7976931348623157e308}},
		{"scalar args", &Record{Args: json.RawMessage(` "just a string" `)}},
		{"approval without time", &Record{Approval: &Approval{ID: "a"}}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if err := tt.rec.Seal(GenesisHash, 1); err != nil {
				t.Fatal(err)
			}
			first, err := tt.rec.Canonical()
			if err != nil {
				t.Fatal(err)
			}
			var back Record
			if err := json.Unmarshal(first, &back); err != nil {
				t.Fatalf("canonical encoding does not decode: %v\n%s", err, first)
			}
			second, err := back.Canonical()
			if err != nil {
				t.Fatal(err)
			}
			if !bytes.Equal(first, second) {
				t.Errorf("round trip changed the encoding:\nfirst:  %s\nsecond: %s", first, second)
			}
			// The record's ordinary JSON form (export) must verify too.
			j, err := json.Marshal(tt.rec)
			if err != nil {
				t.Fatal(err)
			}
			var exported Record
			if err := json.Unmarshal(j, &exported); err != nil {
				t.Fatal(err)
			}
			if h, err := exported.ComputeHash(); err != nil || h != tt.rec.Hash {
				t.Errorf("exported record hashes to %s (%v), want %s", h, err, tt.rec.Hash)
			}
		})
	}
}

func TestCanonicalEquivalence(t *testing.T) {
	base := func(f func(*Record)) *Record {
		r := &Record{Agent: "a", Time: time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC), Args: json.RawMessage(`{"a":1,"b":[1,2]}`)}
		f(r)
		return r
	}
	tests := []struct {
		name string
		a, b *Record
		same bool
	}{
		{"args key order and whitespace", base(func(*Record) {}), base(func(r *Record) { r.Args = json.RawMessage(" { \"b\" : [ 1 , 2 ] , \"a\" : 1 } ") }), true},
		{"args escapes", base(func(r *Record) { r.Args = json.RawMessage(`"\u0041"`) }), base(func(r *Record) { r.Args = json.RawMessage(`"A"`) }), true},
		{"nil and empty args", base(func(r *Record) { r.Args = nil }), base(func(r *Record) { r.Args = json.RawMessage("null") }), true},
		{"nil and empty rules", base(func(r *Record) { r.Rules = nil }), base(func(r *Record) { r.Rules = []string{} }), true},
		{"same instant, other zone", base(func(*Record) {}), base(func(r *Record) { r.Time = r.Time.In(time.FixedZone("X", -7*3600)) }), true},
		{"negative zero cost", base(func(r *Record) { r.CostUSD = math.Copysign(0, -1) }), base(func(r *Record) { r.CostUSD = 0 }), true},
		{"number literal kept", base(func(r *Record) { r.Args = json.RawMessage(`{"a":1.0}`) }), base(func(r *Record) { r.Args = json.RawMessage(`{"a":1}`) }), false},
		{"rule order matters", base(func(r *Record) { r.Rules = []string{"x", "y"} }), base(func(r *Record) { r.Rules = []string{"y", "x"} }), false},
		{"nanoseconds matter", base(func(*Record) {}), base(func(r *Record) { r.Time = r.Time.Add(1) }), false},
		{"approval absent vs empty", base(func(*Record) {}), base(func(r *Record) { r.Approval = &Approval{} }), false},
		{"seq matters", base(func(r *Record) { r.Seq = 1 }), base(func(r *Record) { r.Seq = 2 }), false},
		{"prev hash matters", base(func(r *Record) { r.PrevHash = GenesisHash }), base(func(*Record) {}), false},
		{"hash ignored", base(func(r *Record) { r.Hash = "x" }), base(func(*Record) {}), true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			a, err := tt.a.Canonical()
			if err != nil {
				t.Fatal(err)
			}
			b, err := tt.b.Canonical()
			if err != nil {
				t.Fatal(err)
			}
			if got := bytes.Equal(a, b); got != tt.same {
				t.Errorf("same = %v, want %v\na: %s\nb: %s", got, tt.same, a, b)
			}
		})
	}
}

func TestCanonicalErrors(t *testing.T) {
	tests := []struct {
		name string
		rec  *Record
		want string
	}{
		{"NaN cost", &Record{CostUSD: math.NaN()}, "cost_usd"},
		{"infinite cost", &Record{CostUSD: math.Inf(1)}, "cost_usd"},
		{"invalid args", &Record{Args: json.RawMessage(`{"a":`)}, "args"},
		{"two args values", &Record{Args: json.RawMessage(`{} {}`)}, "more than one"},
		{"time past 9999", &Record{Time: time.Date(10000, 1, 1, 0, 0, 0, 0, time.UTC)}, "time"},
		{"negative year", &Record{Time: time.Date(-1, 1, 1, 0, 0, 0, 0, time.UTC)}, "time"},
		{"approval time past 9999", &Record{Approval: &Approval{DecidedAt: time.Date(10000, 1, 1, 0, 0, 0, 0, time.UTC)}}, "decided_at"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := tt.rec.Canonical()
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Errorf("err = %v, want one mentioning %q", err, tt.want)
			}
		})
	}
}

func TestSeal(t *testing.T) {
	r := fullRecord()
	if err := r.Seal(GenesisHash, 1); err != nil {
		t.Fatal(err)
	}
	if r.Seq != 1 || r.PrevHash != GenesisHash || !isHash(r.Hash) {
		t.Fatalf("sealed record: seq %d prev %q hash %q", r.Seq, r.PrevHash, r.Hash)
	}
	if h, _ := r.ComputeHash(); h != r.Hash {
		t.Errorf("ComputeHash = %s, want %s", h, r.Hash)
	}

	tests := []struct {
		name string
		prev string
		seq  int64
		rec  func() *Record
	}{
		{"seq zero", GenesisHash, 0, fullRecord},
		{"prev not a hash", "abc", 2, fullRecord},
		{"prev upper case", strings.ToUpper(r.Hash), 2, fullRecord},
		{"unencodable", GenesisHash, 2, func() *Record { return &Record{CostUSD: math.NaN()} }},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			rec := tt.rec()
			before := *rec
			if err := rec.Seal(tt.prev, tt.seq); err == nil {
				t.Fatal("Seal succeeded, want an error")
			}
			if rec.Seq != before.Seq || rec.PrevHash != before.PrevHash || rec.Hash != before.Hash {
				t.Errorf("failed Seal changed the record: seq %d prev %q hash %q", rec.Seq, rec.PrevHash, rec.Hash)
			}
		})
	}
}

func BenchmarkSeal(b *testing.B) {
	r := fullRecord()
	b.ReportAllocs()
	for i := 0; b.Loop(); i++ {
		if err := r.Seal(GenesisHash, int64(i+1)); err != nil {
			b.Fatal(err)
		}
	}
}
