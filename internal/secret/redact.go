package secret

import (
	"bytes"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"net/url"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
)

// MinValueLen is the shortest value the redactor registers: shorter ones
// would shred unrelated text and protect nothing.
const MinValueLen = 4

// Redactor removes secrets from text: every value registered with Add, in
// each of the forms it travels in (as is, base64 in the standard and URL
// alphabets with and without padding and at any byte alignment, hex in
// either case, URL query and path escaping, JSON and Go string escaping),
// and well-known token shapes whether registered or not (GitHub, AWS access
// keys, Slack, Anthropic and other sk- keys, JWTs, PEM private keys).
// Each is replaced with [REDACTED:<name>]: the credential's name for a
// registered value, the shape's name (github-token, aws-access-key,
// slack-token, anthropic-key, api-key, jwt, private-key) otherwise.
//
// All patterns are matched in one pass (Aho–Corasick; shapes are found by
// their literal prefixes and confirmed with an anchored expression), so the
// cost does not grow with one regex pass per secret. Overlapping matches
// resolve leftmost-longest.
//
// A Redactor is safe for concurrent use; Add may run while others redact.
// One Redactor serves every outbound path of a process: responses, errors,
// audit records and logs.
type Redactor struct {
	mu     sync.Mutex        // serialises Add
	values map[string]string // registered value → name; guarded by mu
	m      atomic.Pointer[matcher]
}

// NewRedactor returns a redactor that knows the token shapes and no values.
func NewRedactor() *Redactor {
	r := &Redactor{values: map[string]string{}}
	r.m.Store(newMatcher(nil))
	return r
}

// Add registers a secret value under name (a credential name: what the
// placeholder shows). Values shorter than MinValueLen are ignored. Adding a
// value already registered is cheap and keeps its first name.
func (r *Redactor) Add(name string, v Value) {
	if len(v.s) < MinValueLen {
		return
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	if _, ok := r.values[v.s]; ok {
		return
	}
	r.values[v.s] = name
	r.m.Store(newMatcher(r.values))
}

// Len returns how many values are registered.
func (r *Redactor) Len() int {
	r.mu.Lock()
	defer r.mu.Unlock()
	return len(r.values)
}

// Redact returns s with every secret replaced.
func (r *Redactor) Redact(s string) string {
	if r == nil {
		return s
	}
	m := r.m.Load()
	ms := m.find([]byte(s))
	if len(ms) == 0 {
		return s
	}
	return string(apply(nil, []byte(s), ms))
}

// RedactBytes returns b with every secret replaced; b is not modified.
func (r *Redactor) RedactBytes(b []byte) []byte {
	if r == nil {
		return b
	}
	ms := r.m.Load().find(b)
	if len(ms) == 0 {
		return b
	}
	return apply(nil, b, ms)
}

// RedactJSON redacts a JSON document. The placeholders are valid inside
// JSON strings, so the result normally stays valid JSON; should a match
// straddle the document's structure, the redacted text is returned as one
// JSON string rather than invalid JSON.
func (r *Redactor) RedactJSON(doc []byte) []byte {
	out := r.RedactBytes(doc)
	if len(out) == len(doc) && bytes.Equal(out, doc) {
		return doc
	}
	if json.Valid(out) {
		return out
	}
	q, _ := json.Marshal(string(out))
	return q
}

// placeholder is what replaces a secret called name.
func placeholder(name string) string { return "[REDACTED:" + name + "]" }

// match is one occurrence of something to redact: b[start:end].
type match struct {
	start, end int
	name       string
}

// matcher is one immutable generation of patterns.
type matcher struct {
	ac     *automaton
	pats   []pattern
	maxLen int // longest possible match; what a stream must hold back
}

type pattern struct {
	n     int    // length
	name  string // value patterns: the credential name
	shape int    // ≥ 0: a shape's literal prefix; -1: a value form
}

func newMatcher(values map[string]string) *matcher {
	m := &matcher{}
	var raw [][]byte
	seen := map[string]bool{}
	add := func(p string, pat pattern) {
		key := p
		if pat.shape >= 0 {
			key = "\x00shape" + strconv.Itoa(pat.shape) + "\x00" + p
		}
		if (pat.shape < 0 && len(p) < MinValueLen) || seen[key] {
			return
		}
		seen[key] = true
		pat.n = len(p)
		raw = append(raw, []byte(p))
		m.pats = append(m.pats, pat)
		m.maxLen = max(m.maxLen, len(p))
	}
	for i, s := range shapes {
		for _, p := range s.prefixes {
			add(p, pattern{shape: i})
		}
		m.maxLen = max(m.maxLen, s.maxLen)
	}
	// Sorted, so that which name a shared form gets does not depend on
	// map order.
	vs := make([]string, 0, len(values))
	for v := range values {
		vs = append(vs, v)
	}
	slices.Sort(vs)
	for _, v := range vs {
		for _, f := range Forms(v) {
			add(f, pattern{name: values[v], shape: -1})
		}
	}
	m.ac = buildAutomaton(raw)
	return m
}

// Forms returns the encodings of v the redactor looks for: v itself and in
// lower case (the egress proxy lower-cases host names, and a secret a
// command puts in one must still be caught), its
// base64 (standard and URL alphabets, padded and not, and the part of it
// that is the same whatever bytes surround v in a longer encoded string, as
// in HTTP Basic credentials), hex (lower and upper case), URL query and
// path escaping, and JSON and Go string escaping.
func Forms(v string) []string {
	b := []byte(v)
	fs := []string{
		v,
		strings.ToLower(v),
		base64.StdEncoding.EncodeToString(b),
		base64.RawStdEncoding.EncodeToString(b),
		base64.URLEncoding.EncodeToString(b),
		base64.RawURLEncoding.EncodeToString(b),
		hex.EncodeToString(b),
		strings.ToUpper(hex.EncodeToString(b)),
		url.QueryEscape(v),
		url.PathEscape(v),
		jsonEscape(v, true),
		jsonEscape(v, false),
	}
	q := strconv.Quote(v)
	fs = append(fs, q[1:len(q)-1])
	// v inside a longer base64 string starts at one of three alignments;
	// the characters that depend on v alone are stable for each.
	if len(b) >= 2*MinValueLen {
		for k := 0; k < 3; k++ {
			buf := make([]byte, k+len(b))
			copy(buf[k:], b)
			for _, enc := range []*base64.Encoding{base64.RawStdEncoding, base64.RawURLEncoding} {
				e := enc.EncodeToString(buf)
				from := (8*k + 5) / 6
				to := 8 * (k + len(b)) / 6
				if to-from >= MinValueLen {
					fs = append(fs, e[from:to])
				}
			}
		}
	}
	return fs
}

func jsonEscape(v string, html bool) string {
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	enc.SetEscapeHTML(html)
	_ = enc.Encode(v)
	s := strings.TrimSuffix(buf.String(), "\n")
	return s[1 : len(s)-1]
}

// find returns the non-overlapping matches in b, leftmost-longest, sorted.
func (m *matcher) find(b []byte) []match {
	var cands []match
	m.ac.scan(b, func(pi int32, end int) {
		p := m.pats[pi]
		start := end - p.n
		if p.shape < 0 {
			cands = append(cands, match{start: start, end: end, name: p.name})
			return
		}
		if n, name := matchShape(p.shape, b, start); n > 0 {
			cands = append(cands, match{start: start, end: start + n, name: name})
		}
	})
	return selectMatches(cands)
}

func selectMatches(cands []match) []match {
	if len(cands) < 2 {
		return cands
	}
	slices.SortFunc(cands, func(a, b match) int {
		if a.start != b.start {
			return a.start - b.start
		}
		return b.end - a.end
	})
	out := cands[:0]
	end := -1
	for _, c := range cands {
		if c.start < end {
			continue
		}
		out = append(out, c)
		end = c.end
	}
	return out
}

// apply appends b to dst with every match (sorted, disjoint) replaced by its
// placeholder.
func apply(dst, b []byte, ms []match) []byte {
	last := 0
	for _, mt := range ms {
		dst = append(dst, b[last:mt.start]...)
		dst = append(dst, placeholder(mt.name)...)
		last = mt.end
	}
	return append(dst, b[last:]...)
}

// shape is a well-known token format.
type shape struct {
	name     string
	prefixes []string         // literal starts; found by the automaton
	res      []*regexp.Regexp // anchored at the prefix; the first that matches wins
	maxLen   int              // longest match considered
}

// shapes, most specific first: at one position the longest match wins and
// ties go to the earlier shape (sk-ant- before sk-).
var shapes = []shape{
	{name: "github-token", prefixes: []string{"ghp_", "gho_", "ghu_", "ghs_", "ghr_"},
		res: res(`^gh[pousr]_[A-Za-z0-9]{36,251}`), maxLen: 255},
	{name: "github-token", prefixes: []string{"github_pat_"},
		res: res(`^github_pat_[A-Za-z0-9_]{22,244}`), maxLen: 255},
	{name: "aws-access-key", prefixes: []string{"AKIA", "ASIA"},
		res: res(`^(?:AKIA|ASIA)[0-9A-Z]{16}(?:[^0-9A-Za-z]|$)`), maxLen: 21},
	{name: "slack-token", prefixes: []string{"xoxa-", "xoxb-", "xoxp-", "xoxo-", "xoxr-", "xoxs-", "xoxe-"},
		res: res(`^xox[abporse]-[A-Za-z0-9-]{10,250}`), maxLen: 255},
	{name: "anthropic-key", prefixes: []string{"sk-ant-"},
		res: res(`^sk-ant-[A-Za-z0-9_-]{20,250}`), maxLen: 257},
	{name: "api-key", prefixes: []string{"sk-"},
		res: res(`^sk-[A-Za-z0-9_-]{20,250}`), maxLen: 253},
	{name: "jwt", prefixes: []string{"eyJ"},
		res: res(`^eyJ[A-Za-z0-9_-]{2,}\.eyJ[A-Za-z0-9_-]{2,}\.[A-Za-z0-9_-]*`), maxLen: 13400},
	{name: "private-key", prefixes: []string{"-----BEGIN "},
		// Whole block when its END line is there; otherwise everything
		// that can belong to one (also JSON-escaped: \n as backslash n).
		res: res(`^-----BEGIN [A-Z0-9 ]{0,40}PRIVATE KEY-----(?s:.)*?-----END [A-Z0-9 ]{0,40}PRIVATE KEY-----`,
			`^-----BEGIN [A-Z0-9 ]{0,40}PRIVATE KEY-----[A-Za-z0-9+/=\s\\:,-]*`), maxLen: 16200},
}

func res(exprs ...string) []*regexp.Regexp {
	out := make([]*regexp.Regexp, len(exprs))
	for i, e := range exprs {
		out[i] = regexp.MustCompile(e)
	}
	return out
}

// matchShape reports the length of shape i's match at b[start:], 0 if none.
// A shape must not continue a word: "task-…" is not an sk- key.
func matchShape(i int, b []byte, start int) (int, string) {
	if start > 0 && isAlnum(b[start-1]) {
		return 0, ""
	}
	s := &shapes[i]
	w := b[start:min(len(b), start+s.maxLen)]
	if s.name == "api-key" && bytes.HasPrefix(w, []byte("sk-ant-")) {
		return 0, "" // the anthropic-key shape names it
	}
	for _, re := range s.res {
		if loc := re.FindIndex(w); loc != nil {
			n := loc[1]
			if n > 0 && s.name == "aws-access-key" && n > 20 {
				n = 20 // the boundary byte after the key is not part of it
			}
			return n, s.name
		}
	}
	return 0, ""
}

func isAlnum(c byte) bool {
	return '0' <= c && c <= '9' || 'a' <= c && c <= 'z' || 'A' <= c && c <= 'Z'
}
