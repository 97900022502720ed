package artifact

import (
	"hash/maphash"
	"strings"
	"sync/atomic"
)

// ParseCache remembers the results of Parse for recently requested paths:
// validating a path with golang.org/x/mod costs more than the rest of
// serving a small cached file, and clients ask for the same paths again
// and again. Parse is a pure function, so a remembered result is the one
// Parse would give. It is bounded (a fixed number of slots, each keeping
// the last path hashed to it) and never blocks; errors are not kept.
// Safe for concurrent use.
type ParseCache struct {
	seed  maphash.Seed
	slots [parseCacheSlots]atomic.Pointer[Request]
}

// parseCacheSlots bounds a ParseCache: a few hundred kilobytes when full.
const parseCacheSlots = 2048

// NewParseCache returns an empty ParseCache.
func NewParseCache() *ParseCache {
	return &ParseCache{seed: maphash.MakeSeed()}
}

// Parse returns what Parse(p) returns.
func (c *ParseCache) Parse(p string) (Request, error) {
	slot := &c.slots[maphash.String(c.seed, p)%parseCacheSlots]
	if r := slot.Load(); r != nil && r.Key == p {
		return *r, nil
	}
	r, err := Parse(p)
	if err != nil {
		return r, err
	}
	// Keep copies: p may be part of a larger string (a request line).
	kept := r
	kept.Module, kept.Version, kept.Key = strings.Clone(r.Module), strings.Clone(r.Version), strings.Clone(r.Key)
	slot.Store(&kept)
	return r, nil
}
