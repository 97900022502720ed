package metrics

import "github.com/prometheus/client_golang/prometheus"

// policyReasons and policyActions are the label values of
// modproxy_policy_decisions_total (package policy's Reason and Action
// values; metrics is a leaf and names them itself).
var (
	policyReasons = []string{"vulnerable", "cooldown", "retracted", "unknown_time"}
	policyActions = []string{"warn", "block", "exempt"}
)

func newPolicyDecisions(f factory) *prometheus.CounterVec {
	return f.counterVec("modproxy_policy_decisions_total",
		"Supply-chain policy decisions on downloads (zips, and .mod files with block_mod), by namespace (\"\" the root), reason (vulnerable, cooldown, retracted, unknown_time) and action (warn, block, exempt).",
		"namespace", "reason", "action")
}

// PolicyDecision counts one policy finding on a download.
func (m *Metrics) PolicyDecision(namespace, reason, action string) {
	if m != nil {
		m.policyDecisions.WithLabelValues(namespace, reason, action).Inc()
	}
}

// PresetPolicy creates every reason and action series of a namespace
// whose policy is on, zero-valued, so that rates see the first decision.
func (m *Metrics) PresetPolicy(namespace string) {
	if m == nil {
		return
	}
	for _, r := range policyReasons {
		for _, a := range policyActions {
			m.policyDecisions.WithLabelValues(namespace, r, a)
		}
	}
}
