package app

import (
	"context"
	"errors"
	"fmt"
	"log/slog"

	"github.com/warden-dev/warden/internal/call"
	"github.com/warden-dev/warden/internal/config"
	"github.com/warden-dev/warden/internal/notify"
	"github.com/warden-dev/warden/internal/secret"
	"github.com/warden-dev/warden/internal/server"
	"github.com/warden-dev/warden/internal/store"
)

// approvalChannels builds, from the `kind: approvals` document, the
// notifier that announces pending approvals (Slack, webhooks) and the
// options of the Slack interactivity callback. Both are nil when nothing
// is configured. Their secrets resolve through sec like connectors' do
// (cached, registered with the redactor), under the scope "approvals".
func approvalChannels(cfg *config.Config, sec *secret.Resolver, store store.Store, log *slog.Logger) (*notify.Notifier, *server.SlackOptions) {
	a := cfg.Approvals
	if a == nil || (a.Slack == nil && len(a.Webhooks) == 0) {
		return nil, nil
	}
	refs := map[string]string{}
	if a.Slack != nil {
		refs["slack.bot_token"] = a.Slack.BotToken
		refs["slack.signing_secret"] = a.Slack.SigningSecret
	}
	for i, w := range a.Webhooks {
		refs[fmt.Sprintf("webhooks[%d].secret", i)] = w.Secret
	}
	scope := sec.Scope("approvals", refs, secret.DefaultTTL)
	resolve := func(name string) func(ctx context.Context) (secret.Value, error) {
		return func(ctx context.Context) (secret.Value, error) { return scope.Resolve(ctx, name) }
	}

	var sinks []notify.Sink
	var slackOpts *server.SlackOptions
	if s := a.Slack; s != nil {
		sl := &notify.Slack{BaseURL: s.BaseURL, Channel: s.Channel, Token: resolve("slack.bot_token")}
		sinks = append(sinks, sl)
		slackOpts = &server.SlackOptions{
			SigningSecret: resolve("slack.signing_secret"),
			Users:         s.Users,
			Approvers:     approverDirectory{store},
			Messages:      sl,
		}
		log.Info("slack approvals enabled", "channel", s.Channel, "base_url", s.BaseURL, "users", len(s.Users))
	}
	for i, w := range a.Webhooks {
		sinks = append(sinks, &notify.Webhook{URL: w.URL, Secret: resolve(fmt.Sprintf("webhooks[%d].secret", i))})
	}
	return notify.New(notify.Options{Logger: log}, sinks...), slackOpts
}

type approverDirectory struct{ s store.Store }

func (a approverDirectory) ApproverByName(ctx context.Context, name string) (call.Principal, error) {
	p, err := a.s.ApproverByName(ctx, name)
	if errors.Is(err, store.ErrNotFound) {
		return p, fmt.Errorf("%w: %s", server.ErrNoApprover, name)
	}
	return p, err
}
