package app

import (
	"errors"
	"fmt"
	"log/slog"
	"slices"

	"github.com/modproxy/modproxy/internal/config"
	"github.com/modproxy/modproxy/internal/event"
	"github.com/modproxy/modproxy/internal/metrics"
	"github.com/modproxy/modproxy/internal/webhook"
)

// eventSink is where the server's notable events go: the [[webhook]]
// dispatcher, or event.Discard without webhooks. Packages that emit take
// it in their Options (cacheadmin, proxy, resilient; publishing and the
// supply-chain policy get Server.Events).
type eventSink struct {
	event.Sink
	hooks *webhook.Dispatcher // nil without webhooks; closed by Server.Close
}

// webhookHooks maps [[webhook]] tables to webhook.Hooks.
func webhookHooks(cfg config.Config) []webhook.Hook {
	hooks := make([]webhook.Hook, 0, len(cfg.Webhooks))
	for _, w := range cfg.Webhooks {
		h := webhook.Hook{Name: w.Name, URL: w.URL, Secret: w.Secret}
		for _, t := range w.Events {
			h.Events = append(h.Events, event.Type(t))
		}
		hooks = append(hooks, h)
	}
	return hooks
}

// webhookError turns webhook.New's refusal into a *config.Error naming
// the key.
func webhookError(err error) error {
	var he *webhook.HookError
	if errors.As(err, &he) {
		return &config.Error{Key: fmt.Sprintf("webhook[%d].%s", he.Index, he.Field), Err: he.Err}
	}
	return &config.Error{Key: "webhook", Err: err}
}

// validateWebhooks checks the [[webhook]] tables without starting anything.
func validateWebhooks(cfg config.Config) error {
	if len(cfg.Webhooks) == 0 {
		return nil
	}
	d, err := webhook.New(webhook.Options{Hooks: webhookHooks(cfg)})
	if err != nil {
		return webhookError(err)
	}
	d.Close()
	return nil
}

// newEvents builds the server's event sink from the configuration; extra,
// when not nil (WithEvents), receives every event too.
func newEvents(cfg config.Config, log *slog.Logger, m *metrics.Metrics, extra event.Sink) (eventSink, error) {
	if len(cfg.Webhooks) == 0 {
		if extra != nil {
			return eventSink{Sink: extra}, nil
		}
		return eventSink{Sink: event.Discard{}}, nil
	}
	d, err := webhook.New(webhook.Options{Hooks: webhookHooks(cfg), Logger: log, Metrics: m})
	if err != nil {
		return eventSink{}, webhookError(err)
	}
	log.Info("webhooks on", "count", len(cfg.Webhooks))
	if extra != nil {
		return eventSink{Sink: tee{d, extra}, hooks: d}, nil
	}
	return eventSink{Sink: d, hooks: d}, nil
}

// tee sends every event to both sinks.
type tee [2]event.Sink

func (t tee) Emit(e event.Event) {
	t[0].Emit(e)
	t[1].Emit(e)
}

// Events returns the server's event sink, for the packages wired after
// New (their Options take an event.Sink). Never nil.
func (s *Server) Events() event.Sink { return s.events.Sink }

// close delivers what is queued (bounded) and stops the webhooks; called
// once everything that emits has stopped.
func (e eventSink) close() {
	if e.hooks != nil {
		e.hooks.Close()
	}
}

// redactWebhooks returns a copy of hooks with their secrets replaced by
// hidden and the credentials and queries of their URLs removed.
func redactWebhooks(hooks []config.Webhook, hidden string) []config.Webhook {
	hooks = slices.Clone(hooks)
	for i := range hooks {
		if hooks[i].Secret != "" {
			hooks[i].Secret = hidden
		}
		hooks[i].URL = webhook.RedactURL(hooks[i].URL)
	}
	return hooks
}
