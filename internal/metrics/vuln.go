package metrics

import "github.com/prometheus/client_golang/prometheus"

// VulnFuncs exports the vulnerability database's health, read when
// scraped: modproxy_vuln_data_age_seconds (age: seconds since the last
// successful refresh or import of the data served, or since start while
// there is none) and modproxy_vuln_refresh_failures_total (failures: failed
// refreshes and imports since start). Called once, by the server that
// serves a database; the functions must be safe for concurrent use and quick.
func (m *Metrics) VulnFuncs(age, failures func() float64) {
	if m == nil {
		return
	}
	m.vulnOnce.Do(func() {
		m.reg.MustRegister(
			prometheus.NewGaugeFunc(prometheus.GaugeOpts{Name: "modproxy_vuln_data_age_seconds",
				Help: "Seconds since the vulnerability data served was last refreshed or imported successfully (since start while there is none)."}, age),
			prometheus.NewCounterFunc(prometheus.CounterOpts{Name: "modproxy_vuln_refresh_failures_total",
				Help: "Failed refreshes and imports of the vulnerability database; the last good data stays served."}, failures))
	})
}
