package app

import (
	"context"
	"fmt"

	"github.com/modproxy/modproxy/internal/admin"
	"github.com/modproxy/modproxy/internal/cacheadmin"
	"github.com/modproxy/modproxy/internal/proxy"
)

// Refresh implements admin.Refresher: the cache administration drops
// the module's list/@latest/query freshness here and, with cluster
// coordination, on every replica (refreshModule), and audits it.
func (b adminBackend) Refresh(ctx context.Context, actor string, req admin.RefreshRequest) (admin.RefreshResult, error) {
	err := b.s.cache.Refresh(ctx, actor, cacheadmin.RefreshRequest{Module: req.Module, Namespace: req.Namespace, All: req.Namespace == ""})
	if err != nil {
		return admin.RefreshResult{}, err
	}
	return admin.RefreshResult(req), nil
}

var _ admin.Refresher = adminBackend{}

// protocolRefresh is goproxy's Refresher (POST /api/refresh on the
// protocol listener, for tokens with the publish scope): the namespace of
// the URL only ("" the root), rate-limited per identity.
func (s *Server) protocolRefresh(ctx context.Context, identity, actor, ns, mod string) error {
	return s.cache.Refresh(ctx, actor, cacheadmin.RefreshRequest{Module: mod, Namespace: ns, Identity: identity})
}

// refreshModule is cacheadmin's OnRefresh: the services of namespace ns
// ("" the root, "*" all) forget the freshness of mod's mutable answers.
func (s *Server) refreshModule(ns, mod string) error {
	var svcs []*proxy.Service
	for _, n := range s.namespaces {
		if ns == "*" || ns == n.cfg.Name {
			svcs = append(svcs, n.svc)
		}
	}
	if ns == "*" || ns == "" {
		svcs = append(svcs, s.svc)
	}
	if len(svcs) == 0 {
		return fmt.Errorf("no namespace %q", ns)
	}
	for _, svc := range svcs {
		if err := svc.Refresh(mod); err != nil {
			return err
		}
	}
	return nil
}
