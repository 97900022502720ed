package app

import (
	"fmt"

	"github.com/modproxy/modproxy/internal/config"
	"github.com/modproxy/modproxy/internal/routing"
	"github.com/modproxy/modproxy/internal/upstream"
)

// Validate checks what config.Config.Validate, which checks syntax only,
// leaves to the packages that understand the values: every upstream list
// (GOPROXY syntax, upstream.ParseList) and every deny rule's version range
// (routing.ParseRange). It reports the first invalid setting as a
// *config.Error naming its key, wrapping the parser's error. New calls it;
// so does the command line for commands that do not start a server.
func Validate(cfg config.Config) error {
	if _, err := upstream.ParseList(cfg.Upstream); err != nil {
		return &config.Error{Key: "upstream", Err: err}
	}
	for i, rt := range cfg.Routes {
		if _, err := upstream.ParseList(rt.Upstream); err != nil {
			return &config.Error{Key: fmt.Sprintf("route[%d].upstream", i), Err: err}
		}
	}
	for i, d := range cfg.Deny {
		if _, err := routing.ParseRange(d.Versions); err != nil {
			return &config.Error{Key: fmt.Sprintf("deny[%d].versions", i), Err: err}
		}
	}
	for i, ns := range cfg.Namespaces {
		key := fmt.Sprintf("namespace[%d]", i)
		if ns.Upstream != "" {
			if _, err := upstream.ParseList(ns.Upstream); err != nil {
				return &config.Error{Key: key + ".upstream", Err: err}
			}
		}
		for j, rt := range ns.Routes {
			if _, err := upstream.ParseList(rt.Upstream); err != nil {
				return &config.Error{Key: fmt.Sprintf("%s.route[%d]", key, j), Err: fmt.Errorf("match and a valid upstream list are required: %w", err)}
			}
		}
		for j, d := range ns.Deny {
			if _, err := routing.ParseRange(d.Versions); err != nil {
				return &config.Error{Key: fmt.Sprintf("%s.deny[%d]", key, j), Err: fmt.Errorf("match, reason and a valid version range are required: %w", err)}
			}
		}
	}
	if err := validateWebhooks(cfg); err != nil {
		return err
	}
	return validateHosted(cfg)
}
