package app

import (
	"context"
	"fmt"

	"github.com/modproxy/modproxy/internal/admin"
	"github.com/modproxy/modproxy/internal/vulndb"
)

var _ admin.AdvisoryBackend = adminBackend{}

// Advisories implements admin.AdvisoryBackend: the advisories of the
// current vulnerability database that affect a cached version.
func (b adminBackend) Advisories(ctx context.Context) (admin.Advisories, error) {
	exps, err := b.s.exposures(ctx, b.s.vuln.All(), false)
	if err != nil {
		return admin.Advisories{}, err
	}
	out := admin.Advisories{Database: admin.VulnDatabaseOf(b.s.vuln.Status()), Advisories: []admin.Advisory{}}
	for _, e := range exps {
		out.Advisories = append(out.Advisories, admin.AdvisoryOf(e))
	}
	return out, nil
}

// Advisory implements admin.AdvisoryBackend.
func (b adminBackend) Advisory(ctx context.Context, id string) (admin.Advisory, error) {
	a, ok := b.s.vuln.Lookup(id)
	if !ok {
		return admin.Advisory{}, fmt.Errorf("%w: advisory %s is not in the vulnerability database (generation %q)", admin.ErrNotFound, id, b.s.vuln.Status().Generation)
	}
	exps, err := b.s.exposures(ctx, []vulndb.Advisory{a}, true)
	if err != nil {
		return admin.Advisory{}, err
	}
	return admin.AdvisoryOf(exps[0]), nil
}

// exposures are advs with the cached versions (metadata index) each affects.
func (s *Server) exposures(ctx context.Context, advs []vulndb.Advisory, all bool) ([]vulndb.Exposure, error) {
	vers, err := s.cache.Versions(ctx)
	if err != nil {
		return nil, err
	}
	cached := make([]vulndb.Cached, 0, len(vers))
	for _, v := range vers {
		cached = append(cached, vulndb.Cached{Module: v.Module, Version: v.Version, LastAccess: v.LastAccess})
	}
	return vulndb.Exposures(advs, cached, all), nil
}
