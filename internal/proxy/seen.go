package proxy

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"hash/maphash"
	iofs "io/fs"
	"maps"
	"slices"
	"strings"
	"sync"
	"time"

	"golang.org/x/mod/module"
	"golang.org/x/mod/semver"

	"github.com/modproxy/modproxy/internal/artifact"
	"github.com/modproxy/modproxy/internal/errclass"
	"github.com/modproxy/modproxy/internal/storage"
)

// The cooldown's clock. A version's .info Time is the module author's
// word (a back-dated commit, or an old commit tagged today, has an old
// one), so the policy judges a version's age from the later of that time
// and the time this proxy first saw the version: in an upstream list, or,
// for a version no list showed (pseudo-versions), when its .info was
// first read for a decision.
//
// The first-seen times of a module are one small object in the store,
// under a key no GOPROXY path can have (seenKey): the store's Put is
// atomic and durable, and a store shared by replicas shares the times.
// Replicas writing the same module's record at once may lose each
// other's additions; a lost version is seen again later, which only
// makes its cooldown longer.
//
// Bootstrap: when a module has no record yet, the versions of its first
// list are recorded as "seen before the policy" and judged by their
// .info Time alone, so that turning the policy on does not block every
// existing version for min_age. The weakness: a version published just
// before that first list with a back-dated time passes at once; so does
// every version after the record is deleted (it is not an artifact, so
// gc and purges leave it alone, but clearing the store resets it).

// seenBootstrap is the time recorded for the versions of a module's
// first list (the zero Time: judge by the .info Time alone).
var seenBootstrap time.Time

// seenMaxSize bounds a record read from the store.
const seenMaxSize = 4 << 20

// seenLocks serialises the updates of one module's record in this
// process (striped by module path, so that memory stays bounded).
const seenLocks = 64

// seenKey is the store key of module mod's first-seen record: below a
// first element without a dot, which no module path has, and ending in
// "@seen", which no escaped module path element can be.
func (u *supply) seenKey(mod string) (string, error) {
	esc, err := module.EscapePath(mod)
	if err != nil {
		return "", err
	}
	return u.s.opts.MutablePrefix + "policy-seen/" + esc + "/@seen", nil
}

// seenRecord maps a version to when this proxy first saw it
// (seenBootstrap: in the module's first list).
type seenRecord map[string]time.Time

// encode is one line per version: "VERSION RFC3339-TIME", or
// "VERSION -" for a bootstrap version, in semver order.
func (r seenRecord) encode() []byte {
	vs := slices.SortedFunc(maps.Keys(r), semver.Compare)
	var b bytes.Buffer
	for _, v := range vs {
		b.WriteString(v)
		if t := r[v]; t.IsZero() {
			b.WriteString(" -\n")
		} else {
			b.WriteString(" " + t.UTC().Format(time.RFC3339Nano) + "\n")
		}
	}
	return b.Bytes()
}

// decodeSeen parses an encoded record; lines it cannot parse are skipped
// (their versions are then seen anew, which only delays them).
func decodeSeen(data []byte) seenRecord {
	r := seenRecord{}
	sc := bufio.NewScanner(bytes.NewReader(data))
	for sc.Scan() {
		v, ts, ok := strings.Cut(sc.Text(), " ")
		if !ok || !semver.IsValid(v) {
			continue
		}
		if ts == "-" {
			r[v] = seenBootstrap
			continue
		}
		t, err := time.Parse(time.RFC3339Nano, ts)
		if err != nil {
			continue
		}
		r[v] = t
	}
	return r
}

// seenState is a supply's first-seen bookkeeping.
type seenState struct {
	seed  maphash.Seed
	locks [seenLocks]sync.Mutex
	memo  memo[seenRecord] // module -> its record as last read or written (never mutated)
}

func (st *seenState) lock(mod string) *sync.Mutex {
	return &st.locks[maphash.String(st.seed, mod)%seenLocks]
}

// firstSeen returns when this proxy first saw each of versions of mod
// (seenBootstrap for a version of the module's first list), recording
// the versions it had not seen, at now. listed says versions are an
// upstream list's (they then bootstrap a module without a record);
// otherwise a module without a record is bootstrapped from its list,
// read through the cache. Errors are the store's (reading or writing
// the record): the caller fails closed.
func (u *supply) firstSeen(ctx context.Context, mod string, versions []string, listed bool) (seenRecord, error) {
	st := &u.seen
	if r, ok := st.memo.get(mod); ok && hasAll(r, versions) {
		return r, nil
	}
	mu := st.lock(mod)
	mu.Lock()
	defer mu.Unlock()
	key, err := u.seenKey(mod)
	if err != nil {
		return nil, err
	}
	// Read the record again (another replica may have added to it).
	data, err := storage.ReadSmall(ctx, u.s.opts.Store, key, seenMaxSize)
	var r seenRecord
	fresh := false  // no record yet: it is created
	persist := true // false: a cache-only answer that could not bootstrap
	switch {
	case err == nil:
		r = decodeSeen(data)
	case errors.Is(err, iofs.ErrNotExist):
		r, fresh = seenRecord{}, true
		boot := versions
		if !listed {
			if boot, err = u.listed(ctx, mod); err != nil {
				return nil, err
			}
			// Offline, a list not in the cache says nothing: decide
			// (fail closed) without creating the record.
			persist = boot != nil || !u.s.cacheOnly(ctx)
		}
		for _, v := range boot {
			if semver.IsValid(v) {
				r[v] = seenBootstrap
			}
		}
	default:
		return nil, err
	}
	now := u.s.opts.Now()
	changed := fresh
	for _, v := range versions {
		if _, ok := r[v]; !ok && semver.IsValid(v) {
			r[v] = now
			changed = true
		}
	}
	if !persist {
		return r, nil
	}
	if changed {
		if _, err := u.s.put(ctx, key, bytes.NewReader(r.encode())); err != nil {
			return nil, err
		}
	}
	st.memo.put(mod, r)
	return r, nil
}

// listed is mod's list as the service answers it without the policy
// (nil for a module without one).
func (u *supply) listed(ctx context.Context, mod string) ([]string, error) {
	lreq, err := related(mod, "", artifact.List)
	if err != nil {
		return nil, err
	}
	list, err := u.readAll(ctx, lreq)
	if errclass.Of(err) == errclass.NotExist {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	return strings.Fields(string(list)), nil
}

func hasAll(r seenRecord, versions []string) bool {
	for _, v := range versions {
		if _, ok := r[v]; !ok && semver.IsValid(v) {
			return false
		}
	}
	return true
}
