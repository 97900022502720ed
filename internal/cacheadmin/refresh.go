package cacheadmin

import (
	"context"
	"fmt"
	"strings"

	"golang.org/x/mod/module"

	"github.com/modproxy/modproxy/internal/audit"
)

// refreshMessage starts the broadcast of a refresh:
// "refresh\tNAMESPACE\tMODULE" (NAMESPACE empty: every service).
const refreshMessage = "refresh\t"

// RefreshRequest names the module path whose list, @latest and query
// answers are to be fetched again at their next request.
type RefreshRequest struct {
	Module string
	// Namespace limits the refresh to one namespace ("" with All unset:
	// the root service).
	Namespace string
	All       bool // every service: the root and every namespace
	// Identity, when set, is the caller whose refreshes are rate-limited
	// (Options.RefreshEvery, RefreshBurst); "" is not limited.
	Identity string
}

// Refresh drops the freshness of req.Module's mutable answers on this
// replica at once (Options.OnRefresh) and, with a coordinator, on every
// other replica (broadcast; an unreachable coordinator is logged, the
// local refresh stands). It is audited with actor. An invalid module path
// is ErrInvalid; so is an error of OnRefresh here (an unknown namespace).
// A refresh beyond req.Identity's rate is a *RateLimitError (and applies
// nowhere, nor is it audited); a malformed one does not count.
func (s *Service) Refresh(ctx context.Context, actor string, req RefreshRequest) error {
	if err := module.CheckPath(req.Module); err != nil {
		return fmt.Errorf("%w: %w", ErrInvalid, err)
	}
	if strings.ContainsAny(req.Namespace, "\t\n") {
		return fmt.Errorf("%w: namespace %q", ErrInvalid, req.Namespace)
	}
	if err := s.refreshAllowed(req.Identity); err != nil {
		return err
	}
	ns := req.Namespace
	if req.All {
		ns = "*"
	}
	if err := s.applyRefresh(ns, req.Module); err != nil {
		return fmt.Errorf("%w: %w", ErrInvalid, err)
	}
	if c := s.opts.Coordinator; c != nil {
		if err := c.Publish(ctx, refreshMessage+ns+"\t"+req.Module); err != nil {
			s.log.Warn("could not tell other replicas of a refresh", "module", req.Module, "err", err)
		}
	}
	target := req.Module
	if ns != "" {
		target = ns + ":" + target
	}
	_ = s.opts.Audit.Record(audit.Event{Actor: actor, Action: "refresh", Target: target})
	return nil
}

func (s *Service) applyRefresh(namespace, mod string) error {
	if s.opts.OnRefresh == nil {
		return nil
	}
	return s.opts.OnRefresh(namespace, mod)
}

// onRefreshMessage applies a refresh broadcast by a replica (this one's
// own included: applying it twice does no harm).
func (s *Service) onRefreshMessage(msg string) bool {
	rest, ok := strings.CutPrefix(msg, refreshMessage)
	if !ok {
		return false
	}
	ns, mod, ok := strings.Cut(rest, "\t")
	if !ok {
		return true
	}
	if err := s.applyRefresh(ns, mod); err != nil {
		s.log.Warn("refresh from another replica not applied", "namespace", ns, "module", mod, "err", err)
	}
	return true
}
