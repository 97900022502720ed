package cacheadmin

import (
	"context"

	"github.com/modproxy/modproxy/internal/gc"
)

// Versions returns every cached module version with its size and last
// access, in module and semver order (gc.Versions of the index, after
// the pending index events are applied). It is ErrUnavailable while the
// index is being rebuilt.
func (s *Service) Versions(ctx context.Context) ([]*gc.Entry, error) {
	if err := s.indexReady(ctx); err != nil {
		return nil, err
	}
	s.opts.Index.Flush()
	return gc.Versions(s.opts.Index)
}
