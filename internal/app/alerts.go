package app

import (
	"context"
	"fmt"
	"log/slog"
	"time"

	"github.com/warden-dev/warden/internal/alert"
	"github.com/warden-dev/warden/internal/call"
	"github.com/warden-dev/warden/internal/config"
	"github.com/warden-dev/warden/internal/dispatch"
	"github.com/warden-dev/warden/internal/notify"
	"github.com/warden-dev/warden/internal/secret"
	"github.com/warden-dev/warden/internal/store"
)

// alerting builds the alert evaluator from the `kind: alerts` document,
// sending through the destinations of the `kind: approvals` document (its
// secrets resolved under the scope "alerts"); nil when no rule is
// configured. Like the approval channels, it is built from the config the
// server started with.
func alerting(cfg *config.Config, sec *secret.Resolver, store store.Store, log *slog.Logger) *alert.Evaluator {
	if cfg.Alerts == nil || len(cfg.Alerts.Rules) == 0 {
		return nil
	}
	senders := map[string][]alert.Sender{}
	if a := cfg.Approvals; a != nil {
		refs := map[string]string{}
		if a.Slack != nil {
			refs["slack.bot_token"] = a.Slack.BotToken
		}
		for i, w := range a.Webhooks {
			refs[fmt.Sprintf("webhooks[%d].secret", i)] = w.Secret
		}
		scope := sec.Scope("alerts", refs, secret.DefaultTTL)
		resolve := func(name string) func(ctx context.Context) (secret.Value, error) {
			return func(ctx context.Context) (secret.Value, error) { return scope.Resolve(ctx, name) }
		}
		if s := a.Slack; s != nil {
			senders[alert.ChannelSlack] = []alert.Sender{&notify.Slack{BaseURL: s.BaseURL, Channel: s.Channel, Token: resolve("slack.bot_token")}}
		}
		for i, w := range a.Webhooks {
			senders[alert.ChannelWebhook] = append(senders[alert.ChannelWebhook], &notify.Webhook{URL: w.URL, Secret: resolve(fmt.Sprintf("webhooks[%d].secret", i))})
		}
	}
	var rules []alert.Rule
	for _, r := range cfg.Alerts.Rules {
		rules = append(rules, alert.Rule{Name: r.Name, When: r.Cond, Notify: r.Notify})
	}
	log.Info("alerts enabled", "rules", len(rules))
	return alert.New(alert.Options{Rules: rules, Senders: senders, Backlog: store.PendingCount, Logger: log, Interval: alertInterval})
}

// alertInterval is how often alert rules are evaluated.
const alertInterval = 15 * time.Second

// observers tells every observer what the dispatcher reports: the
// Prometheus metrics and the alert counters.
type observers []dispatch.Observer

var _ dispatch.Observer = observers(nil)

func observe(m dispatch.Observer, e *alert.Evaluator) dispatch.Observer {
	if e == nil {
		return m
	}
	return observers{m, alertObserver{e}}
}

func (o observers) Decided(l dispatch.Labels, d call.Decision, latency time.Duration) {
	for _, x := range o {
		x.Decided(l, d, latency)
	}
}

func (o observers) Finished(l dispatch.Labels, d call.Decision, outcome string, elapsed time.Duration) {
	for _, x := range o {
		x.Finished(l, d, outcome, elapsed)
	}
}

func (o observers) ApprovalRequested(l dispatch.Labels) {
	for _, x := range o {
		x.ApprovalRequested(l)
	}
}

func (o observers) ApprovalResolved(l dispatch.Labels, result string, wait time.Duration) {
	for _, x := range o {
		x.ApprovalResolved(l, result, wait)
	}
}

func (o observers) ConnectorFailed(l dispatch.Labels) {
	for _, x := range o {
		x.ConnectorFailed(l)
	}
}

func (o observers) SecretFailed(connector string) {
	for _, x := range o {
		x.SecretFailed(connector)
	}
}

func (o observers) AuditAppended(latency time.Duration, err error) {
	for _, x := range o {
		x.AuditAppended(latency, err)
	}
}

func (o observers) Reported(l dispatch.Labels, tokens int64, costUSD float64) {
	for _, x := range o {
		x.Reported(l, tokens, costUSD)
	}
}

// alertObserver feeds the alert evaluator's sliding windows.
type alertObserver struct{ e *alert.Evaluator }

func key(l dispatch.Labels) alert.Key { return alert.Key{Agent: l.Agent, Connector: l.Connector} }

func (a alertObserver) Decided(l dispatch.Labels, d call.Decision, _ time.Duration) {
	a.e.Decided(key(l), d == call.Deny)
}

func (a alertObserver) Finished(l dispatch.Labels, _ call.Decision, outcome string, _ time.Duration) {
	if outcome == dispatch.StatusSucceeded || outcome == dispatch.StatusFailed {
		a.e.Executed(key(l))
	}
}

func (a alertObserver) ConnectorFailed(l dispatch.Labels) { a.e.ConnectorFailed(key(l)) }
func (a alertObserver) Reported(l dispatch.Labels, _ int64, costUSD float64) {
	a.e.Cost(key(l), costUSD)
}
func (alertObserver) ApprovalRequested(dispatch.Labels)                       {}
func (alertObserver) ApprovalResolved(dispatch.Labels, string, time.Duration) {}
func (alertObserver) SecretFailed(string)                                     {}
func (alertObserver) AuditAppended(time.Duration, error)                      {}
