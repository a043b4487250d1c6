// Package alert watches what warden does and tells operators when a
// threshold is crossed: the `when` mini-language of alert rules
// ("deny_rate > 0.2 over 5m"), sliding-window counters fed by the
// dispatcher's observer, and an Evaluator that sends one notification when
// a rule starts firing and one when it resolves. Delivery (webhooks,
// Slack) is not here: Senders are injected (internal/notify implements
// them). It knows nothing of HTTP, SQL or Prometheus.
package alert

import (
	"fmt"
	"math"
	"sort"
	"strconv"
	"strings"
	"time"
)

// Metric is what a condition watches.
type Metric string

// Metrics a condition may name.
const (
	// DenyRate: DENY decisions / all decisions over the window (labels:
	// agent, connector). No decision in the window is 0.
	DenyRate Metric = "deny_rate"
	// ErrorRate: connector errors / executions over the window (labels:
	// connector, agent). No execution in the window is 0.
	ErrorRate Metric = "error_rate"
	// CostPerHour: reported cost in USD over the window, scaled to an hour
	// (labels: agent). The window defaults to 1h.
	CostPerHour Metric = "cost_per_hour"
	// ApprovalBacklog: calls waiting for a human now (no labels, no window).
	ApprovalBacklog Metric = "approval_backlog"
)

// Window bounds, and the default for the rates.
const (
	MinWindow     = time.Minute
	MaxWindow     = time.Hour
	DefaultWindow = 5 * time.Minute
)

var metricLabels = map[Metric][]string{
	DenyRate:        {"agent", "connector"},
	ErrorRate:       {"agent", "connector"},
	CostPerHour:     {"agent"},
	ApprovalBacklog: nil,
}

// Condition is a parsed `when`.
type Condition struct {
	Metric    Metric
	Labels    map[string]string // label → value the counters must match
	Op        string            // >, >=, <, <=
	Threshold float64
	Window    time.Duration // 0 for approval_backlog
}

// String is the condition in canonical form; Parse(c.String()) == c.
func (c Condition) String() string {
	var b strings.Builder
	b.WriteString(string(c.Metric))
	if len(c.Labels) > 0 {
		keys := make([]string, 0, len(c.Labels))
		for k := range c.Labels {
			keys = append(keys, k)
		}
		sort.Strings(keys)
		b.WriteByte('{')
		for i, k := range keys {
			if i > 0 {
				b.WriteByte(',')
			}
			fmt.Fprintf(&b, "%s=%s", k, c.Labels[k])
		}
		b.WriteByte('}')
	}
	fmt.Fprintf(&b, " %s %s", c.Op, strconv.FormatFloat(c.Threshold, 'g', -1, 64))
	if c.Window > 0 {
		b.WriteString(" over " + fmtWindow(c.Window))
	}
	return b.String()
}

func fmtWindow(d time.Duration) string {
	switch {
	case d%time.Hour == 0:
		return fmt.Sprintf("%dh", d/time.Hour)
	case d%time.Minute == 0:
		return fmt.Sprintf("%dm", d/time.Minute)
	}
	return fmt.Sprintf("%ds", d/time.Second)
}

// Holds reports whether value crosses the threshold.
func (c Condition) Holds(value float64) bool {
	switch c.Op {
	case ">":
		return value > c.Threshold
	case ">=":
		return value >= c.Threshold
	case "<":
		return value < c.Threshold
	case "<=":
		return value <= c.Threshold
	}
	return false
}

// SyntaxError is a `when` that does not parse; Offset is the byte where
// the problem is (0-based).
type SyntaxError struct {
	Offset int
	Msg    string
}

func (e *SyntaxError) Error() string {
	return fmt.Sprintf("at character %d: %s", e.Offset+1, e.Msg)
}

// maxWhen bounds a `when`: it is config, not a program.
const maxWhen = 256

// Parse reads a condition:
//
//	when   = metric [ "{" label "=" value { "," label "=" value } "}" ] op number [ "over" duration ]
//	metric = deny_rate | error_rate | cost_per_hour | approval_backlog
//	op     = ">" | ">=" | "<" | "<="
//
// Label values are names ([A-Za-z0-9_.-]) or "double-quoted". Rates are
// fractions (0.2, not 20%); windows are Go durations between 1m and 1h.
func Parse(s string) (Condition, error) {
	if len(s) > maxWhen {
		return Condition{}, &SyntaxError{Offset: maxWhen, Msg: fmt.Sprintf("longer than %d characters", maxWhen)}
	}
	p := &parser{src: s}
	c, err := p.when()
	if err != nil {
		return Condition{}, err
	}
	return c, nil
}

type parser struct {
	src string
	pos int
}

func (p *parser) fail(at int, format string, args ...any) error {
	return &SyntaxError{Offset: at, Msg: fmt.Sprintf(format, args...)}
}

func (p *parser) space() {
	for p.pos < len(p.src) && (p.src[p.pos] == ' ' || p.src[p.pos] == '\t') {
		p.pos++
	}
}

// word reads a run of name characters.
func (p *parser) word() (string, int) {
	p.space()
	start := p.pos
	for p.pos < len(p.src) && isNameByte(p.src[p.pos]) {
		p.pos++
	}
	return p.src[start:p.pos], start
}

func isNameByte(c byte) bool {
	return c == '_' || c == '-' || c == '.' || c == '+' || ('a' <= c && c <= 'z') || ('A' <= c && c <= 'Z') || ('0' <= c && c <= '9')
}

func (p *parser) peek() byte {
	p.space()
	if p.pos < len(p.src) {
		return p.src[p.pos]
	}
	return 0
}

func (p *parser) when() (Condition, error) {
	var c Condition
	name, at := p.word()
	if name == "" {
		return c, p.fail(at, "expected a metric (deny_rate, error_rate, cost_per_hour, approval_backlog)")
	}
	c.Metric = Metric(name)
	allowed, ok := metricLabels[c.Metric]
	if !ok {
		return c, p.fail(at, "unknown metric %q; expected deny_rate, error_rate, cost_per_hour or approval_backlog", name)
	}
	if p.peek() == '{' {
		p.pos++
		c.Labels = map[string]string{}
		for {
			label, lat := p.word()
			if label == "" {
				return c, p.fail(lat, "expected a label name")
			}
			if !contains(allowed, label) {
				if len(allowed) == 0 {
					return c, p.fail(lat, "%s takes no labels", name)
				}
				return c, p.fail(lat, "%s has no label %q; expected %s", name, label, strings.Join(allowed, " or "))
			}
			if _, dup := c.Labels[label]; dup {
				return c, p.fail(lat, "label %q given twice", label)
			}
			if p.peek() != '=' {
				return c, p.fail(p.pos, "expected = after %s", label)
			}
			p.pos++
			v, vat, err := p.value()
			if err != nil {
				return c, err
			}
			if v == "" {
				return c, p.fail(vat, "empty value for %s", label)
			}
			c.Labels[label] = v
			switch p.peek() {
			case ',':
				p.pos++
				continue
			case '}':
				p.pos++
			default:
				return c, p.fail(p.pos, "expected , or } in the labels")
			}
			break
		}
	}
	p.space()
	at = p.pos
	switch {
	case strings.HasPrefix(p.src[p.pos:], ">="), strings.HasPrefix(p.src[p.pos:], "<="):
		c.Op, p.pos = p.src[p.pos:p.pos+2], p.pos+2
	case strings.HasPrefix(p.src[p.pos:], ">"), strings.HasPrefix(p.src[p.pos:], "<"):
		c.Op, p.pos = p.src[p.pos:p.pos+1], p.pos+1
	default:
		return c, p.fail(at, "expected a comparison (>, >=, <, <=) after %s", name)
	}
	num, nat := p.word()
	if num == "" {
		return c, p.fail(nat, "expected a number after %s", c.Op)
	}
	f, err := strconv.ParseFloat(num, 64)
	if err != nil || math.IsNaN(f) || math.IsInf(f, 0) {
		hint := ""
		if p.peek() == '%' {
			hint = "; rates are fractions: write 0.2 for 20%"
		}
		return c, p.fail(nat, "%q is not a number%s", num, hint)
	}
	if f < 0 {
		return c, p.fail(nat, "the threshold must not be negative")
	}
	if (c.Metric == DenyRate || c.Metric == ErrorRate) && f > 1 {
		return c, p.fail(nat, "%s is a fraction between 0 and 1 (write 0.2 for 20%%), got %s", name, num)
	}
	c.Threshold = f

	w, wat := p.word()
	switch {
	case w == "over" && c.Metric == ApprovalBacklog:
		return c, p.fail(wat, "approval_backlog is a count now; it takes no window")
	case w == "over":
		ds, dat := p.word()
		if ds == "" {
			return c, p.fail(dat, "expected a duration after over, such as 5m")
		}
		d, err := time.ParseDuration(ds)
		if err != nil {
			return c, p.fail(dat, "%q is not a duration (such as 5m or 1h)", ds)
		}
		if d < MinWindow || d > MaxWindow {
			return c, p.fail(dat, "the window must be between 1m and 1h, got %s", ds)
		}
		if d%(10*time.Second) != 0 {
			return c, p.fail(dat, "the window must be a whole number of 10 s, got %s", ds)
		}
		c.Window = d
	case w != "":
		return c, p.fail(wat, "unexpected %q; expected over and a duration, or the end", w)
	case c.Metric == CostPerHour:
		c.Window = time.Hour
	case c.Metric != ApprovalBacklog:
		c.Window = DefaultWindow
	}
	if p.space(); p.pos < len(p.src) {
		return c, p.fail(p.pos, "unexpected %q after the condition", p.src[p.pos:])
	}
	return c, nil
}

func (p *parser) value() (string, int, error) {
	if p.peek() != '"' {
		v, at := p.word()
		if v == "" {
			return "", at, p.fail(at, "expected a value (a name or a \"quoted string\")")
		}
		return v, at, nil
	}
	at := p.pos
	end := strings.IndexByte(p.src[p.pos+1:], '"')
	if end < 0 {
		return "", at, p.fail(at, "unterminated quoted value")
	}
	v := p.src[p.pos+1 : p.pos+1+end]
	p.pos += end + 2
	for i := 0; i < len(v); i++ {
		if !isNameByte(v[i]) {
			return "", at, p.fail(at+1+i, "label values are names: letters, digits, _ . - +")
		}
	}
	return v, at + 1, nil
}

func contains(xs []string, s string) bool {
	for _, x := range xs {
		if x == s {
			return true
		}
	}
	return false
}
