package app

import (
	"errors"
	"fmt"
	"time"

	"github.com/modproxy/modproxy/internal/config"
	"github.com/modproxy/modproxy/internal/event"
	"github.com/modproxy/modproxy/internal/policy"
	"github.com/modproxy/modproxy/internal/proxy"
)

// Option gives New an optional dependency.
type Option func(*deps)

// deps are New's optional dependencies.
type deps struct {
	advisories policy.Source // nil: no vulnerability data
	events     event.Sink    // nil: events are dropped
}

// WithAdvisories makes src the vulnerability data of the supply-chain
// policy instead of the server's vulnerability database (vuln.source or
// an imported one).
func WithAdvisories(src policy.Source) Option { return func(d *deps) { d.advisories = src } }

// WithEvents sends every notable event to sink too (besides [[webhook]]s).
func WithEvents(sink event.Sink) Option { return func(d *deps) { d.events = sink } }

// supplyPolicy is the proxy's enforcement of a [policy] table (key names
// it in errors), nil when the policy checks nothing. A namespace without
// its own [namespace.policy] has the root's.
func (s *Server) supplyPolicy(key, namespace string, c config.Policy) (*proxy.Supply, error) {
	p, err := policyOf(key, c)
	if err != nil {
		return nil, err
	}
	if !p.On() {
		return nil, nil
	}
	src := s.deps.advisories
	if src == nil && s.vuln != nil {
		if p.NeedsAdvisories() && s.cfg.Vuln.Source == "" && s.vuln.Status().Generation == "" {
			k := key + ".vulnerable"
			if p.Vulnerable == policy.Off {
				k = key + ".allow_fixes"
			}
			return nil, &config.Error{Key: k, Err: errors.New("needs vulnerability data: set vuln.source (a mirror) or import the database first (modproxy vuln import FILE)")}
		}
		src = s.vuln
	}
	now := time.Now()
	for _, e := range p.Exempt {
		if !e.Expires.IsZero() && !now.Before(e.Expires) {
			s.log.Warn("policy exemption has expired and no longer applies", "namespace", namespace, "match", e.Match, "id", e.ID, "expired", e.Expires)
		}
	}
	s.metrics.PresetPolicy(namespace)
	s.log.Info("supply-chain policy on", "namespace", namespace, "vulnerable", p.Vulnerable.String(), "min_age", p.MinAge,
		"allow_fixes", p.AllowFixes, "retracted", p.Retracted.String(), "block_mod", p.BlockMod, "hide_vulnerable", p.HideVulnerable, "exemptions", len(p.Exempt))
	return &proxy.Supply{Policy: p, Advisories: src, Namespace: namespace, Events: s.events.Sink, Identity: identityName}, nil
}

// policyOf translates a validated [policy] table into package policy's
// terms.
func policyOf(key string, c config.Policy) (policy.Policy, error) {
	var p policy.Policy
	var err error
	if p.Vulnerable, err = policy.ParseMode(c.Vulnerable); err != nil {
		return p, &config.Error{Key: key + ".vulnerable", Err: err}
	}
	if p.Retracted, err = policy.ParseMode(c.Retracted); err != nil {
		return p, &config.Error{Key: key + ".retracted", Err: err}
	}
	p.MinAge, p.AllowFixes, p.BlockMod, p.HideVulnerable = time.Duration(c.MinAge), c.AllowFixes, c.BlockMod, c.HideVulnerable
	for i, e := range c.Exempt {
		exp, err := e.ExpiryTime()
		if err != nil {
			return p, &config.Error{Key: fmt.Sprintf("%s.exempt[%d].expires", key, i), Err: err}
		}
		pe := policy.Exemption{Match: e.Match, ID: e.ID, Reason: e.Reason, Expires: exp}
		if err := pe.Check(); err != nil {
			return p, &config.Error{Key: fmt.Sprintf("%s.exempt[%d]", key, i), Err: err}
		}
		p.Exempt = append(p.Exempt, pe)
	}
	return p, nil
}

// namespacePolicy is a namespace's [namespace.policy], or the root's.
func (s *Server) namespacePolicy(i int, ns config.Namespace) (*proxy.Supply, error) {
	if ns.Policy == nil {
		return s.supplyPolicy("policy", ns.Name, s.cfg.Policy)
	}
	return s.supplyPolicy(fmt.Sprintf("namespace[%d].policy", i), ns.Name, *ns.Policy)
}
