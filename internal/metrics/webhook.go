package metrics

import "github.com/prometheus/client_golang/prometheus"

// webhooks are the outbound webhook metrics (package webhook).
type webhooks struct {
	deliveries *prometheus.CounterVec
	dropped    *prometheus.CounterVec
	retries    *prometheus.CounterVec
}

func newWebhooks(f factory) *webhooks {
	return &webhooks{
		deliveries: f.counterVec("modproxy_webhook_deliveries_total",
			"Webhook deliveries by webhook and result (ok: 2xx; failed: retries exhausted or a final 4xx).", "webhook", "result"),
		dropped: f.counterVec("modproxy_webhook_dropped_total",
			"Events not delivered to a webhook because its queue was full or the server shut down first.", "webhook"),
		retries: f.counterVec("modproxy_webhook_retries_total", "Retried webhook delivery attempts.", "webhook"),
	}
}

// PresetWebhook creates, at zero, every series of a webhook.
func (m *Metrics) PresetWebhook(name string) {
	if m == nil {
		return
	}
	for _, r := range []string{"ok", "failed"} {
		m.webhooks.deliveries.WithLabelValues(name, r)
	}
	m.webhooks.dropped.WithLabelValues(name)
	m.webhooks.retries.WithLabelValues(name)
}

// WebhookDelivery counts a finished delivery to a webhook.
func (m *Metrics) WebhookDelivery(name string, ok bool) {
	if m == nil {
		return
	}
	r := "failed"
	if ok {
		r = "ok"
	}
	m.webhooks.deliveries.WithLabelValues(name, r).Inc()
}

// WebhookDropped counts an event a webhook did not get.
func (m *Metrics) WebhookDropped(name string) {
	if m != nil {
		m.webhooks.dropped.WithLabelValues(name).Inc()
	}
}

// WebhookRetry counts a retried delivery attempt.
func (m *Metrics) WebhookRetry(name string) {
	if m != nil {
		m.webhooks.retries.WithLabelValues(name).Inc()
	}
}
