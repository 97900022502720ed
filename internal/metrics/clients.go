package metrics

import "github.com/prometheus/client_golang/prometheus"

// ClientSample is one identity's totals for ClientFunc.
type ClientSample struct {
	Identity        string
	Requests, Bytes int64
}

// ClientFunc makes modproxy_client_requests_total{identity} and
// modproxy_client_bytes_total{identity} read samples at every scrape. The
// caller bounds the identities (token and certificate mapping names,
// "anonymous", "other"; never addresses). samples must be safe for
// concurrent use and quick. Only the first call registers; later calls
// are ignored.
func (m *Metrics) ClientFunc(samples func() []ClientSample) {
	if m == nil {
		return
	}
	m.ops.clientsOnce.Do(func() {
		m.reg.MustRegister(&clientCollector{samples: samples})
	})
}

var (
	clientRequestsDesc = prometheus.NewDesc("modproxy_client_requests_total",
		"Protocol requests per identity (token or certificate mapping name; anonymous without authentication; other beyond the tracked identities).", []string{"identity"}, nil)
	clientBytesDesc = prometheus.NewDesc("modproxy_client_bytes_total",
		"Response body bytes sent per identity (as modproxy_client_requests_total).", []string{"identity"}, nil)
)

type clientCollector struct {
	samples func() []ClientSample
}

func (c *clientCollector) Describe(ch chan<- *prometheus.Desc) {
	ch <- clientRequestsDesc
	ch <- clientBytesDesc
}

func (c *clientCollector) Collect(ch chan<- prometheus.Metric) {
	for _, s := range c.samples() {
		ch <- prometheus.MustNewConstMetric(clientRequestsDesc, prometheus.CounterValue, float64(s.Requests), s.Identity)
		ch <- prometheus.MustNewConstMetric(clientBytesDesc, prometheus.CounterValue, float64(s.Bytes), s.Identity)
	}
}
