package proxy

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	iofs "io/fs"
	"net/http"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/modproxy/modproxy/internal/artifact"
	"github.com/modproxy/modproxy/internal/checksum"
	"github.com/modproxy/modproxy/internal/errclass"
	"github.com/modproxy/modproxy/internal/storage"
)

// hash returns the recorded h1: of the stored .zip or .mod key, whose
// object is info, with its preformatted headers, or nil when none is
// recorded (remembered too). What is remembered is tied to the object it
// was read for (size and modification time): an object replaced since (a
// hosted version purged and published again with other bytes, a repair)
// has its sidecar read again.
func (s *Service) hash(ctx context.Context, key string, info storage.Info) *hashEntry {
	if e, ok := s.hashes.get(key); ok && e.size == info.Size && e.mod.Equal(info.ModTime) {
		return e
	}
	b, err := storage.ReadSmall(ctx, s.opts.Store, key+".h1", 256)
	switch {
	case errors.Is(err, iofs.ErrNotExist):
		// content cached before hashes were recorded: remember there is none
	case err != nil:
		return nil
	case !checksum.ValidH1(string(b)):
		// a sidecar that a crash left empty or zero-filled (it is written
		// unsynced, see storeVerified): the same as none
		b = nil
	}
	return s.hashes.put(key, string(b), info)
}

// withHash sets the recorded hash of a .zip or .mod result.
func (s *Service) withHash(ctx context.Context, req artifact.Request, res *Result) {
	if res.Object == nil {
		return // defensive: every Result carries an Object (a redirect's is empty)
	}
	if e := s.hash(ctx, req.Key, res.Object.Info()); e != nil {
		res.H1, res.HashHeaders = e.h1, e.hdr
	}
}

// hashCache keeps recorded hashes in memory, bounded.
type hashCache struct {
	mu sync.Mutex
	m  map[string]*hashEntry
}

type hashEntry struct {
	h1   string
	hdr  *HashHeaders
	size int64     // of the object the hash was recorded for
	mod  time.Time // its modification time
}

// HashHeaders are the response header values of a recorded hash,
// preformatted once: ETag "h1:..." and X-Go-Checksum h1:... .
type HashHeaders struct {
	ETag, Checksum []string
}

const hashCacheMax = 200_000

func (c *hashCache) get(key string) (*hashEntry, bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	e, ok := c.m[key]
	return e, ok
}

// put remembers h (maybe "": none) as the hash of key's object info.
func (c *hashCache) put(key, h string, info storage.Info) *hashEntry {
	e := &hashEntry{h1: h, size: info.Size, mod: info.ModTime}
	if h != "" {
		e.hdr = &HashHeaders{ETag: []string{`"` + h + `"`}, Checksum: []string{h}}
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if len(c.m) >= hashCacheMax {
		clear(c.m)
	}
	c.m[key] = e
	return e
}

// negCache remembers definitive upstream answers (not found, refused:
// see definitive) for a short time, with their text and class, indexed
// by module path too (see delModule).
type negCache struct {
	mu    sync.Mutex
	m     map[string]negEntry
	byMod map[string]map[string]struct{} // module path -> keys of m
}

type negEntry struct {
	until time.Time
	msg   string
	class errclass.Class
	mod   string // the module path the key is indexed by; "" none
}

const negCacheMax = 100_000

// get returns the remembered answer for key as the error to answer with
// (a *NotFoundError for a not-found, a *RefusedError for a refusal), or
// nil.
func (c *negCache) get(key string, now time.Time) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	e, ok := c.m[key]
	if !ok {
		return nil
	}
	if !now.Before(e.until) {
		c.remove(key, e)
		return nil
	}
	if e.class == errclass.NotExist {
		return &NotFoundError{Key: key, Msg: e.msg, Cached: true}
	}
	return &RefusedError{Key: key, Msg: e.msg, class: e.class}
}

// put remembers an answer for key until until; mod, when not "", is the
// module path whose refresh forgets it (delModule).
func (c *negCache) put(key, mod, msg string, class errclass.Class, until time.Time) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if len(c.m) >= negCacheMax {
		now := time.Now()
		for k, e := range c.m {
			if !now.Before(e.until) {
				c.remove(k, e)
			}
		}
		if len(c.m) >= negCacheMax {
			clear(c.m)
			clear(c.byMod)
		}
	}
	if old, ok := c.m[key]; ok {
		c.remove(key, old)
	}
	c.m[key] = negEntry{until: until, msg: msg, class: class, mod: mod}
	if mod != "" {
		if c.byMod == nil {
			c.byMod = map[string]map[string]struct{}{}
		}
		keys := c.byMod[mod]
		if keys == nil {
			keys = map[string]struct{}{}
			c.byMod[mod] = keys
		}
		keys[key] = struct{}{}
	}
}

func (c *negCache) del(key string) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if e, ok := c.m[key]; ok {
		c.remove(key, e)
	}
}

// delModule forgets every remembered answer indexed by module path mod;
// its cost is that of the answers it forgets.
func (c *negCache) delModule(mod string) {
	c.mu.Lock()
	defer c.mu.Unlock()
	for k := range c.byMod[mod] {
		delete(c.m, k)
	}
	delete(c.byMod, mod)
}

// remove deletes key, whose entry is e, with c.mu held.
func (c *negCache) remove(key string, e negEntry) {
	delete(c.m, key)
	if e.mod == "" {
		return
	}
	if keys := c.byMod[e.mod]; keys != nil {
		delete(keys, key)
		if len(keys) == 0 {
			delete(c.byMod, e.mod)
		}
	}
}

// memCache keeps small immutable objects (.info, .mod, checksum database
// lookups and tiles) in memory, so a hit costs a stat instead of an open,
// read and close. An entry is used only while the store still holds the
// same object (size and modification time), so an object deleted,
// evicted or replaced — by this process or another — is never served from
// memory. Bounded in bytes; when full it is emptied.
type memCache struct {
	mu    sync.Mutex
	m     map[string]*memEntry
	bytes int64
}

// ETag is the entity tag of an object without a recorded hash.
func ETag(size int64, mod time.Time) string {
	return `"` + strconv.FormatInt(size, 36) + "-" + strconv.FormatInt(mod.UnixNano(), 36) + `"`
}

// MemBody is content served from memory, with response header values
// formatted once. The value slices are shared: never modify them.
type MemBody struct {
	Data          []byte
	LastModified  []string // http.TimeFormat
	ETag          []string // quoted; from size and modification time
	ContentLength []string
}

type memEntry struct {
	data    []byte
	body    *MemBody
	info    storage.Info
	checked atomic.Int64 // unix nanoseconds of the last check against the store
}

// memRecheck is how long a memory entry is trusted before the store is
// asked again whether it still holds the object. Content is immutable and
// verified; the check only catches deletion (eviction, purge, repair), so
// a deleted object may be served from memory this long.
const memRecheck = 2 * time.Second

const (
	memMaxObject = 64 << 10
	memMaxBytes  = 64 << 20
)

func (c *memCache) get(key string) *memEntry {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.m[key]
}

func (c *memCache) put(key string, e *memEntry) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.bytes+int64(len(e.data)) > memMaxBytes {
		clear(c.m)
		c.bytes = 0
	}
	if old := c.m[key]; old != nil {
		c.bytes -= int64(len(old.data))
	}
	c.m[key] = e
	c.bytes += int64(len(e.data))
}

func (c *memCache) del(key string) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if old := c.m[key]; old != nil {
		c.bytes -= int64(len(old.data))
		delete(c.m, key)
	}
}

func memCacheable(req artifact.Request) bool {
	return req.Kind == artifact.Info || req.Kind == artifact.Mod || req.Kind == artifact.SumDB
}

// memHit answers a memory-cacheable request from memory when the store
// still holds the same object; now is Options.Now's time.
func (s *Service) memHit(ctx context.Context, req artifact.Request, now time.Time) *Result {
	e := s.mem.get(req.Key)
	if e == nil {
		return nil
	}
	wall := now // the recheck runs on the real clock, whatever Options.Now is
	if !s.realClock {
		wall = time.Now()
	}
	if wall.UnixNano()-e.checked.Load() > int64(memRecheck) {
		info, err := s.opts.Store.Stat(ctx, req.Key)
		if err != nil || info.Size != e.info.Size || !info.ModTime.Equal(e.info.ModTime) {
			s.mem.del(req.Key)
			return nil
		}
		e.checked.Store(wall.UnixNano())
	}
	m := &memResult{}
	m.rd.Reset(e.data)
	m.obj = memObject{Reader: &m.rd, info: e.info}
	m.res = Result{Object: &m.obj, Outcome: Hit, Age: max(now.Sub(e.info.ModTime), 0), Mem: e.body}
	return &m.res
}

// memResult is a Result from memory with its object: one allocation.
type memResult struct {
	res Result
	obj memObject
	rd  bytes.Reader
}

// memKeep reads a small immutable object into memory and returns an object
// serving those bytes; others are returned as they are. An object that
// cannot be read whole is an error, never a short answer.
func (s *Service) memKeep(req artifact.Request, obj storage.Object) (storage.Object, error) {
	info := obj.Info()
	if !memCacheable(req) || info.Size > memMaxObject {
		return obj, nil
	}
	data, err := io.ReadAll(io.LimitReader(obj, memMaxObject+1))
	obj.Close()
	if err != nil {
		return nil, fmt.Errorf("cache read %s: %w", req.Key, err)
	}
	if int64(len(data)) != info.Size {
		return nil, fmt.Errorf("cache read %s: %d bytes, want %d (changed while read)", req.Key, len(data), info.Size)
	}
	e := &memEntry{data: data, info: info, body: &MemBody{Data: data, LastModified: []string{info.ModTime.UTC().Format(http.TimeFormat)},
		ETag: []string{ETag(info.Size, info.ModTime)}, ContentLength: []string{strconv.Itoa(len(data))}}}
	e.checked.Store(time.Now().UnixNano())
	s.mem.put(req.Key, e)
	return &memObject{Reader: bytes.NewReader(data), info: info}, nil
}
