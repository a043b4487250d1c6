package server

import (
	"cmp"
	"context"
	"fmt"
	"math"
	"net/http"
	"slices"
	"strings"
	"time"

	"github.com/warden-dev/warden/internal/call"
)

// The console's admin pages. Who sees what:
//
//   - approver tokens: the inbox (/) and history, and nothing below;
//     GET or POST of an admin page answers 403.
//   - admin tokens: the dashboard and the agents page with the kill switch
//     and config rollback; / sends them to the dashboard, and they cannot
//     read or decide approvals (Dispatcher.Approvals and Decide refuse
//     them, as in the API).
//
// An admin token bound to a tenant sees and kills only that tenant's
// agents and cannot roll back the config, which is every tenant's.
//
//	GET  /console/dashboard         activity over the last hour and day
//	GET  /console/agents            agents, live config version, kill switches
//	POST /console/agents/kill       form: csrf, tenant, agent, reason
//	POST /console/agents/revive     form: csrf, tenant, agent
//	POST /console/config/rollback   form: csrf
//
// Every action goes through Operations, which the app implements with the
// functions `warden kill`, `revive` and `rollback` use, so the console
// does exactly what the CLI does and audits it the same way, with the
// admin's identity and the trigger web:<identity>.

// Operations is what the admin pages read and do.
type Operations interface {
	Stats(ctx context.Context, q StatsQuery) (*Stats, error)
	KillSwitches(ctx context.Context) ([]KillSwitch, error)
	// LiveActivation says how the store's live config version became
	// live; nil when none was ever applied (the config comes from files).
	LiveActivation(ctx context.Context) (*Activation, error)
	// SwitchKill sets or clears a kill switch and audits it. changed false
	// with a message: nothing to do (already killed, not killed).
	SwitchKill(ctx context.Context, k KillRequest) (changed bool, msg string, err error)
	// Rollback makes the previous config version live and audits it. done
	// false with a message: refused (nothing to roll back to); err: it
	// failed.
	Rollback(ctx context.Context, by string) (done bool, msg string, err error)
}

// StatsQuery selects a window of the audit trail.
type StatsQuery struct {
	Tenant string // "" for every tenant
	Since  time.Time
	Now    time.Time
	Bucket time.Duration // width of the call-volume buckets
}

// Stats summarises a window; see the store's Stats for each field.
type Stats struct {
	Calls           int64
	Volume          []int64 // calls per bucket, oldest first
	Decisions       map[string]int64
	Connectors      map[string]ConnectorOutcomes
	ApprovalLatency []time.Duration
	Expired         int64
	Usage           map[string]AgentUsage // by tenant/agent
	Truncated       bool
}

// ConnectorOutcomes counts a connector's executed calls.
type ConnectorOutcomes struct{ Succeeded, Failed int64 }

// AgentUsage is the cost and tokens an agent reported.
type AgentUsage struct {
	CostUSD float64
	Tokens  int64
}

// KillSwitch is a set kill switch ("*" wildcards).
type KillSwitch struct {
	Tenant, Agent, By, Why string
	At                     time.Time
}

// Activation is how the live config version became live.
type Activation struct {
	Version, Kind, By string
	At                time.Time
}

// KillRequest asks to set or clear one kill switch.
type KillRequest struct {
	Revive        bool
	Tenant, Agent string
	By, Reason    string
}

var errAdminOnly = newError(http.StatusForbidden, "forbidden", "Only admin tokens can see or do this.")

// consoleRole reports whether a role may sign in to the console.
func consoleRole(r call.Role) bool { return r == call.RoleApprover || r == call.RoleAdmin }

func (s *Server) mountAdmin(mux *http.ServeMux) {
	mux.Handle("GET /console/dashboard", s.page(s.getDashboard))
	mux.Handle("GET /console/agents", s.page(s.getAgents))
	mux.Handle("POST /console/agents/kill", s.page(func(w http.ResponseWriter, r *http.Request) error { return s.postKill(w, r, false) }))
	mux.Handle("POST /console/agents/revive", s.page(func(w http.ResponseWriter, r *http.Request) error { return s.postKill(w, r, true) }))
	mux.Handle("POST /console/config/rollback", s.page(s.postRollback))
}

// adminUser is consoleUser for the admin pages.
func (s *Server) adminUser(r *http.Request) (*session, call.Principal, error) {
	sess, p, err := s.consoleUser(r)
	if err != nil {
		return nil, p, err
	}
	if p.Role != call.RoleAdmin {
		return nil, p, errAdminOnly
	}
	if s.ops == nil {
		return nil, p, newError(http.StatusServiceUnavailable, "unavailable", "The admin pages are not available on this server.")
	}
	return sess, p, nil
}

// adminPost is consolePost for the admin actions: session and CSRF first,
// then the role.
func (s *Server) adminPost(w http.ResponseWriter, r *http.Request) (*session, call.Principal, error) {
	sess, p, err := s.consolePost(w, r)
	if err != nil {
		return nil, p, err
	}
	if p.Role != call.RoleAdmin {
		return nil, p, errAdminOnly
	}
	if s.ops == nil {
		return nil, p, newError(http.StatusServiceUnavailable, "unavailable", "The admin pages are not available on this server.")
	}
	return sess, p, nil
}

// Dashboard

// The two windows the dashboard shows, with their call-volume buckets.
var dashWindows = []struct {
	name, title string
	span, step  time.Duration
}{
	{"hour", "Last hour", time.Hour, 5 * time.Minute},
	{"day", "Last day", 24 * time.Hour, time.Hour},
}

type dashboardView struct{ Windows []dashWindow }

type dashWindow struct {
	Name, Title string
	Calls       int64
	ErrorRate   string // executed calls that failed, all connectors
	Truncated   bool
	Charts      []chart
}

func (s *Server) getDashboard(w http.ResponseWriter, r *http.Request) error {
	sess, p, err := s.adminUser(r)
	if err != nil {
		return err
	}
	now := s.now()
	var view dashboardView
	for _, win := range dashWindows {
		st, err := s.ops.Stats(r.Context(), StatsQuery{Tenant: p.Tenant, Since: now.Add(-win.span), Now: now, Bucket: win.step})
		if err != nil {
			return &apiError{status: http.StatusServiceUnavailable, code: "unavailable", message: "cannot read the statistics", cause: err}
		}
		view.Windows = append(view.Windows, dashboardWindow(win.name, win.title, win.span, win.step, st))
	}
	d := s.signedIn(sess, p, "Dashboard", "dashboard")
	d.View = view
	s.render(w, http.StatusOK, "dashboard", d)
	return nil
}

func dashboardWindow(name, title string, span, step time.Duration, st *Stats) dashWindow {
	win := dashWindow{Name: name, Title: title, Calls: st.Calls, Truncated: st.Truncated}

	// Call volume: one column per bucket, oldest left.
	vol := make([]row, len(st.Volume))
	for i, n := range st.Volume {
		ago := span - time.Duration(i)*step
		vol[i] = row{label: "from " + humanSpan(ago) + " ago", value: float64(n), text: fmt.Sprint(n)}
	}
	win.Charts = append(win.Charts, columns("volume-"+name, "Call volume", "per "+humanSpan(step), vol,
		"−"+humanSpan(span), "now"))

	// Decisions, in the order a call can get them.
	var dec []row
	order := []string{string(call.Allow), string(call.AllowWithConstraints), string(call.RequireApproval), string(call.Deny)}
	for k := range st.Decisions {
		if !slices.Contains(order, k) {
			order = append(order, k)
		}
	}
	for _, k := range order {
		if n := st.Decisions[k]; n > 0 {
			dec = append(dec, row{label: k, value: float64(n), text: fmt.Sprintf("%d (%s)", n, percent(n, st.Calls)), class: strings.ToLower(k)})
		}
	}
	win.Charts = append(win.Charts, hbars("decisions-"+name, "Decisions", "", dec, "No calls.", 0))

	// Error rate by connector: failed among executed calls.
	var errs []row
	var failed, executed int64
	for _, c := range sortedKeys(st.Connectors) {
		o := st.Connectors[c]
		n := o.Succeeded + o.Failed
		failed, executed = failed+o.Failed, executed+n
		cls := "ok"
		if o.Failed > 0 {
			cls = "bad"
		}
		errs = append(errs, row{label: c, value: float64(o.Failed) / float64(max(n, 1)),
			text: fmt.Sprintf("%s (%d of %d)", percent(o.Failed, n), o.Failed, n), class: cls})
	}
	win.ErrorRate = percent(failed, executed)
	win.Charts = append(win.Charts, hbars("errors-"+name, "Error rate by connector", "failed executions", errs, "Nothing executed.", 1))

	// Approval latency: a histogram of request → vote.
	lat := st.ApprovalLatency
	limits := []struct {
		d     time.Duration
		label string
	}{{10 * time.Second, "< 10s"}, {time.Minute, "10s – 1m"}, {5 * time.Minute, "1 – 5m"}, {15 * time.Minute, "5 – 15m"}, {time.Hour, "15m – 1h"}, {math.MaxInt64, "≥ 1h"}}
	counts := make([]int64, len(limits))
	for _, d := range lat {
		for i, l := range limits {
			if d < l.d {
				counts[i]++
				break
			}
		}
	}
	var hist []row
	for i, l := range limits {
		hist = append(hist, row{label: l.label, value: float64(counts[i]), text: fmt.Sprint(counts[i])})
	}
	note := fmt.Sprintf("%d votes", len(lat))
	if len(lat) == 1 {
		note = "1 vote"
	}
	if len(lat) > 0 {
		sorted := slices.Clone(lat)
		slices.Sort(sorted)
		note += fmt.Sprintf(" · median %s · p90 %s · max %s", humanSpan(quantile(sorted, 0.5)), humanSpan(quantile(sorted, 0.9)), humanSpan(sorted[len(sorted)-1]))
	} else {
		hist = nil
	}
	if st.Expired > 0 {
		note += fmt.Sprintf(" · %d expired", st.Expired)
	}
	win.Charts = append(win.Charts, hbars("latency-"+name, "Approval latency", note, hist, "No approval votes.", 0))

	// Cost per agent, the most expensive first.
	var cost []row
	for _, a := range sortedKeys(st.Usage) {
		u := st.Usage[a]
		cost = append(cost, row{label: a, value: u.CostUSD, text: fmt.Sprintf("$%.2f · %d tokens", u.CostUSD, u.Tokens)})
	}
	slices.SortStableFunc(cost, func(a, b row) int { return cmp.Compare(b.value, a.value) })
	if len(cost) > maxBars {
		cost = cost[:maxBars]
	}
	win.Charts = append(win.Charts, hbars("cost-"+name, "Cost per agent", "reported by the agents", cost, "No agent reported cost or tokens.", 0))
	return win
}

func sortedKeys[V any](m map[string]V) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	return keys
}

func percent(n, of int64) string {
	if of == 0 {
		return "0%"
	}
	return fmt.Sprintf("%.0f%%", 100*float64(n)/float64(of))
}

// quantile of a sorted, non-empty slice (nearest rank).
func quantile(sorted []time.Duration, q float64) time.Duration {
	i := int(math.Ceil(q*float64(len(sorted)))) - 1
	return sorted[min(max(i, 0), len(sorted)-1)]
}

// humanSpan renders a duration compactly: 45s, 5m, 1h, 24h, 3h5m.
func humanSpan(d time.Duration) string {
	switch {
	case d < time.Minute:
		return fmt.Sprintf("%ds", int(d.Seconds()))
	case d < time.Hour:
		return fmt.Sprintf("%dm", int(d.Minutes()))
	case d%time.Hour == 0:
		return fmt.Sprintf("%dh", int(d.Hours()))
	}
	return fmt.Sprintf("%dh%dm", int(d.Hours()), int(d.Minutes())%60)
}

// Charts: inline SVG computed here, so the page needs no script (the CSP
// allows none inline) and the template only places what it is given.

const (
	chartWidth = 460.0
	rowHeight  = 22.0
	labelWidth = 150.0
	valueWidth = 130.0
	colHeight  = 110.0
	maxBars    = 20
)

type chart struct {
	ID, Title, Note string
	Width, Height   float64
	Bars            []bar
	Axis            []axisLabel
	Empty           string // shown instead of an empty chart
}

type bar struct {
	Label, Value string
	X, Y, W, H   float64
	LX, LY       float64 // label; LX < 0: no label (columns)
	VX, VY       float64 // value
	Class        string
}

type axisLabel struct {
	X, Y   float64
	Anchor string
	Text   string
}

type row struct {
	label, text, class string
	value              float64
}

// hbars is a horizontal bar chart, one labelled row per entry. full is
// the value of a full-width bar; 0: the largest value.
func hbars(id, title, note string, rows []row, empty string, full float64) chart {
	c := chart{ID: id, Title: title, Note: note, Empty: empty, Width: chartWidth, Height: rowHeight * float64(len(rows))}
	if full <= 0 {
		for _, r := range rows {
			full = max(full, r.value)
		}
	}
	area := chartWidth - labelWidth - valueWidth
	for i, r := range rows {
		y := float64(i) * rowHeight
		w := 0.0
		if full > 0 {
			w = area * r.value / full
		}
		if r.value > 0 {
			w = max(w, 2) // something is there: show it
		}
		c.Bars = append(c.Bars, bar{Label: r.label, Value: r.text, Class: r.class,
			X: labelWidth, Y: y + 3, W: w, H: rowHeight - 6,
			LX: labelWidth - 6, LY: y + rowHeight/2 + 4, VX: labelWidth + w + 6, VY: y + rowHeight/2 + 4})
	}
	return c
}

// columns is a column chart over time, oldest left, with its ends labelled.
func columns(id, title, note string, rows []row, first, last string) chart {
	c := chart{ID: id, Title: title, Note: note, Width: chartWidth, Height: colHeight + 18}
	top := 0.0
	for _, r := range rows {
		top = max(top, r.value)
	}
	if top == 0 {
		c.Empty = "No calls."
		return c
	}
	w := chartWidth / float64(len(rows))
	for i, r := range rows {
		h := colHeight * r.value / top
		if r.value > 0 {
			h = max(h, 2)
		}
		c.Bars = append(c.Bars, bar{Label: r.label, Value: r.text, Class: "volume",
			X: float64(i)*w + 1, Y: colHeight - h, W: max(w-2, 1), H: h, LX: -1, VX: float64(i)*w + w/2, VY: colHeight - h - 3})
	}
	c.Height += 14 // room above the tallest column for its count
	for i := range c.Bars {
		c.Bars[i].Y += 14
		c.Bars[i].VY += 14
	}
	c.Axis = []axisLabel{{X: 0, Y: colHeight + 28, Anchor: "start", Text: first}, {X: chartWidth, Y: colHeight + 28, Anchor: "end", Text: last}}
	return c
}

// Agents

type agentsView struct {
	Version     string // the config version this server serves
	Activation  *Activation
	FromFiles   bool // no version was applied to the store: the files are served
	CanRollback bool
	Agents      []agentRow
	Kills       []killRow
}

type agentRow struct {
	Tenant, Name, Owner, Description string
	Kill                             *KillSwitch
	Own                              bool // Kill is this agent's own switch: revive it from the row
}

type killRow struct {
	KillSwitch
	What      string
	CanRevive bool
}

func (s *Server) getAgents(w http.ResponseWriter, r *http.Request) error {
	sess, p, err := s.adminUser(r)
	if err != nil {
		return err
	}
	kills, err := s.ops.KillSwitches(r.Context())
	if err != nil {
		return &apiError{status: http.StatusServiceUnavailable, code: "unavailable", message: "cannot read the kill switches", cause: err}
	}
	act, err := s.ops.LiveActivation(r.Context())
	if err != nil {
		return &apiError{status: http.StatusServiceUnavailable, code: "unavailable", message: "cannot read the live config version", cause: err}
	}
	view := agentsView{Activation: act, FromFiles: act == nil, CanRollback: act != nil && p.Tenant == ""}
	if snap := s.d.Snapshot(); snap != nil && snap.Engine != nil {
		view.Version = snap.Engine.Version()
		for _, a := range snap.Engine.Agents() {
			if !p.InTenant(a.Tenant) {
				continue
			}
			ar := agentRow{Tenant: a.Tenant, Name: a.Name, Owner: a.Owner, Description: a.Description}
			ar.Kill, ar.Own = stoppedBy(kills, a.Tenant, a.Name)
			view.Agents = append(view.Agents, ar)
		}
	}
	for _, k := range kills {
		if k.Tenant == "*" || p.InTenant(k.Tenant) {
			view.Kills = append(view.Kills, killRow{KillSwitch: k, What: killTarget(k.Tenant, k.Agent), CanRevive: k.Tenant != "*" || p.Tenant == ""})
		}
	}
	d := s.signedIn(sess, p, "Agents", "agents")
	d.View = view
	s.render(w, http.StatusOK, "agents", d)
	return nil
}

// stoppedBy finds the switch that stops tenant/agent, the oldest like the
// store's Killed, and whether it is the agent's own.
func stoppedBy(kills []KillSwitch, tenant, agent string) (*KillSwitch, bool) {
	var found *KillSwitch
	for i, k := range kills {
		if (k.Tenant == tenant && (k.Agent == agent || k.Agent == "*")) || (k.Tenant == "*" && k.Agent == "*") {
			if found == nil || k.At.Before(found.At) {
				found = &kills[i]
			}
		}
	}
	return found, found != nil && found.Tenant == tenant && found.Agent == agent
}

func killTarget(tenant, agent string) string {
	switch {
	case tenant == "*":
		return "everything"
	case agent == "*":
		return "tenant " + tenant
	}
	return tenant + "/" + agent
}

const maxFormField = 500

func (s *Server) postKill(w http.ResponseWriter, r *http.Request, revive bool) error {
	sess, p, err := s.adminPost(w, r)
	if err != nil {
		return err
	}
	f := r.PostForm
	k := KillRequest{Revive: revive, Tenant: strings.TrimSpace(f.Get("tenant")), Agent: strings.TrimSpace(f.Get("agent")),
		By: p.Identity(), Reason: strings.TrimSpace(f.Get("reason"))}
	switch {
	case k.Tenant == "" || k.Agent == "" || len(k.Tenant)+len(k.Agent) > maxFormField || len(k.Reason) > maxFormField:
		return newError(http.StatusBadRequest, "invalid_form", "Name a tenant and an agent (and at most 500 characters of reason).")
	case !revive && (k.Tenant == "*" || k.Agent == "*"):
		// Whole tenants and everything: `warden kill --tenant T | --all`.
		return newError(http.StatusBadRequest, "invalid_form", "The console kills one agent at a time; use warden kill --tenant or --all for more.")
	case k.Tenant == "*" && p.Tenant != "", k.Tenant != "*" && !p.InTenant(k.Tenant):
		return newError(http.StatusForbidden, "forbidden", "This token cannot act on tenant "+k.Tenant+".")
	}
	changed, msg, err := s.ops.SwitchKill(r.Context(), k)
	if err != nil {
		return err
	}
	if changed && !revive {
		msg += ". Its calls are refused within a second."
	}
	s.log.InfoContext(r.Context(), "console kill switch", "admin", p.Identity(), "revive", revive, "tenant", k.Tenant, "agent", k.Agent, "changed", changed)
	s.sessions.setFlash(sess, msg, changed)
	http.Redirect(w, r, "/console/agents", http.StatusSeeOther)
	return nil
}

func (s *Server) postRollback(w http.ResponseWriter, r *http.Request) error {
	sess, p, err := s.adminPost(w, r)
	if err != nil {
		return err
	}
	if p.Tenant != "" {
		return newError(http.StatusForbidden, "forbidden", "The config is every tenant's: only an admin token of every tenant can roll it back.")
	}
	done, msg, err := s.ops.Rollback(r.Context(), p.Identity())
	if err != nil {
		return err
	}
	if done {
		msg += ". Servers on this store switch to it within a second."
	}
	s.log.InfoContext(r.Context(), "console config rollback", "admin", p.Identity(), "done", done)
	s.sessions.setFlash(sess, msg, done)
	http.Redirect(w, r, "/console/agents", http.StatusSeeOther)
	return nil
}
