package toolchain_test

import (
	"bytes"
	"context"
	"errors"
	"io"
	iofs "io/fs"
	"os"
	"path/filepath"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/modproxy/modproxy/internal/audit"
	"github.com/modproxy/modproxy/internal/errclass"
	"github.com/modproxy/modproxy/internal/event"
	"github.com/modproxy/modproxy/internal/storage"
	storagefs "github.com/modproxy/modproxy/internal/storage/fs"
	"github.com/modproxy/modproxy/internal/toolchain"
	"github.com/modproxy/modproxy/internal/toolchain/toolchaintest"
	"github.com/modproxy/modproxy/internal/upstream/proxyclient"
)

const (
	linux   = "go1.30.1.linux-amd64.tar.gz"
	windows = "go1.30.1.windows-amd64.zip"
	older   = "go1.29.4.linux-amd64.tar.gz"
)

// testFiles are a few MB of archives of two releases.
func testFiles() []toolchaintest.File {
	return []toolchaintest.File{
		toolchaintest.Archive("go1.29.4", older, 2<<20),
		toolchaintest.Archive("go1.30.1", linux, 3<<20+17),
		toolchaintest.Archive("go1.30.1", windows, 1<<20),
	}
}

// clock is a test clock that starts at the real time and moves on demand
// (the store records real modification times).
type clock struct{ off atomic.Int64 }

func (c *clock) Now() time.Time          { return time.Now().Add(time.Duration(c.off.Load())) }
func (c *clock) Advance(d time.Duration) { c.off.Add(int64(d)) }

type env struct {
	site   *toolchaintest.Site
	store  *storagefs.Store
	svc    *toolchain.Service
	clock  *clock
	audit  *audit.Log
	events *events
	dir    string
}

type events struct {
	mu sync.Mutex
	ev []event.Event
}

func (e *events) Emit(ev event.Event) {
	e.mu.Lock()
	defer e.mu.Unlock()
	e.ev = append(e.ev, ev)
}

func newEnv(t *testing.T, tweak func(*toolchain.Options)) *env {
	t.Helper()
	e := &env{site: toolchaintest.New(t, testFiles()...), clock: &clock{}, events: &events{}, dir: t.TempDir()}
	var err error
	if e.store, err = storagefs.New(e.dir); err != nil {
		t.Fatal(err)
	}
	if e.audit, err = audit.Open(filepath.Join(e.dir, "audit.log")); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { e.audit.Close() })
	site, err := proxyclient.NewSite(e.site.URL, proxyclient.Options{})
	if err != nil {
		t.Fatal(err)
	}
	opts := toolchain.Options{Site: site, Store: e.store, TempDir: e.store.TempDir(), TTL: time.Minute, StaleIfError: time.Hour,
		Audit: e.audit, Events: e.events, Now: e.clock.Now}
	if tweak != nil {
		tweak(&opts)
	}
	e.svc = toolchain.New(opts)
	t.Cleanup(e.svc.Close)
	return e
}

func (e *env) file(name string) toolchaintest.File {
	for _, f := range testFiles() {
		if f.Name == name {
			return f
		}
	}
	panic("no test file " + name)
}

// read returns an archive's content, closing it.
func read(t *testing.T, a *toolchain.Archive) []byte {
	t.Helper()
	defer a.Close()
	b, err := io.ReadAll(a)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func (e *env) stored(t *testing.T, key string) bool {
	t.Helper()
	_, err := e.store.Stat(context.Background(), key)
	if err != nil && !errors.Is(err, iofs.ErrNotExist) {
		t.Fatal(err)
	}
	return err == nil
}

func TestListingServedAndCached(t *testing.T) {
	e := newEnv(t, nil)
	ctx := context.Background()
	for _, all := range []bool{true, false} {
		q := "?mode=json"
		if all {
			q += "&include=all"
		}
		first, err := e.svc.Listing(ctx, all, false)
		if err != nil {
			t.Fatal(err)
		}
		second, err := e.svc.Listing(ctx, all, false)
		if err != nil {
			t.Fatal(err)
		}
		if first.Outcome != toolchain.Miss || second.Outcome != toolchain.Hit {
			t.Errorf("%s: outcomes %s, %s; want miss, hit", q, first.Outcome, second.Outcome)
		}
		if !bytes.Equal(first.Data, second.Data) || !bytes.Contains(first.Data, []byte(linux)) {
			t.Errorf("%s: listing %s / %s", q, first.Data, second.Data)
		}
		if n := e.site.Requests(q); n != 1 {
			t.Errorf("%s: %d requests to the site, want 1", q, n)
		}
	}
	all, err := e.svc.Listing(ctx, true, false)
	if err != nil {
		t.Fatal(err)
	}
	cur, err := e.svc.Listing(ctx, false, false)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Contains(all.Data, []byte(older)) || bytes.Contains(cur.Data, []byte(older)) {
		t.Errorf("include=all should list %s and mode=json should not:\nall: %s\ncurrent: %s", older, all.Data, cur.Data)
	}
	// Past its TTL the listing is fetched again.
	e.clock.Advance(2 * time.Minute)
	l, err := e.svc.Listing(ctx, true, false)
	if err != nil {
		t.Fatal(err)
	}
	if l.Outcome != toolchain.Miss || e.site.Requests("?mode=json&include=all") != 2 {
		t.Errorf("after the TTL: outcome %s, %d requests; want miss, 2", l.Outcome, e.site.Requests("?mode=json&include=all"))
	}
}

func TestArchiveVerifiedAndStored(t *testing.T) {
	e := newEnv(t, nil)
	ctx := context.Background()
	want := e.file(linux)
	a, err := e.svc.Archive(ctx, linux, false)
	if err != nil {
		t.Fatal(err)
	}
	if a.Outcome != toolchain.Miss || a.SHA256 != want.SHA256() {
		t.Errorf("outcome %s, sha256 %s; want miss, %s", a.Outcome, a.SHA256, want.SHA256())
	}
	if got := read(t, a); !bytes.Equal(got, want.Data) {
		t.Fatalf("served %d bytes, not the site's %d", len(got), len(want.Data))
	}
	rec, err := storage.ReadSmall(ctx, e.store, toolchain.ArchiveKey(linux)+".sha256", 100)
	if err != nil || string(rec) != want.SHA256() {
		t.Errorf("recorded sha256 %q, %v; want %s", rec, err, want.SHA256())
	}
	a, err = e.svc.Archive(ctx, linux, false)
	if err != nil {
		t.Fatal(err)
	}
	if a.Outcome != toolchain.Hit || !bytes.Equal(read(t, a), want.Data) {
		t.Errorf("second request: outcome %s", a.Outcome)
	}
	if n := e.site.Requests(linux); n != 1 {
		t.Errorf("%d downloads from the site, want 1", n)
	}
	sum, err := e.svc.SHA256(ctx, linux, false)
	if err != nil || sum != want.SHA256() {
		t.Errorf("SHA256 = %s, %v", sum, err)
	}
	// The spool file was moved in: nothing is left in the store's tmp.
	if ents, err := os.ReadDir(e.store.TempDir()); err != nil || len(ents) != 0 {
		t.Errorf("tmp holds %v (%v)", ents, err)
	}
}

func TestTamperedArchiveRefused(t *testing.T) {
	e := newEnv(t, nil)
	ctx := context.Background()
	e.site.Tamper(linux, true)
	_, err := e.svc.Archive(ctx, linux, false)
	var me *toolchain.MismatchError
	if !errors.As(err, &me) || errclass.Of(err) != errclass.Mismatch {
		t.Fatalf("err = %v (class %v), want a *MismatchError", err, errclass.Of(err))
	}
	if me.File != linux || me.Want != e.file(linux).SHA256() || me.Got == me.Want || len(me.Got) != 64 {
		t.Errorf("mismatch %+v", me)
	}
	for _, key := range []string{toolchain.ArchiveKey(linux), toolchain.ArchiveKey(linux) + ".sha256"} {
		if e.stored(t, key) {
			t.Errorf("%s stored after a mismatch", key)
		}
	}
	if ents, err := os.ReadDir(e.store.TempDir()); err != nil || len(ents) != 0 {
		t.Errorf("tmp holds %v (%v)", ents, err)
	}
	recs, err := audit.Read(e.audit.Path())
	if err != nil || len(recs) != 1 || recs[0].Target != linux || recs[0].Hashes["want"] != "sha256:"+me.Want {
		t.Errorf("audit records %+v, %v", recs, err)
	}
	if len(e.events.ev) != 1 || e.events.ev[0].Type != event.Mismatch || e.events.ev[0].Version != "go1.30.1" {
		t.Errorf("events %+v", e.events.ev)
	}
	// Asking again fetches again (nothing was remembered), and an honest
	// site's archive is stored.
	e.site.Tamper(linux, false)
	a, err := e.svc.Archive(ctx, linux, false)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(read(t, a), e.file(linux).Data) || e.site.Requests(linux) != 2 {
		t.Errorf("honest site: %d downloads", e.site.Requests(linux))
	}
}

func TestUnknownFileNotFound(t *testing.T) {
	e := newEnv(t, nil)
	ctx := context.Background()
	for _, name := range []string{"go1.30.1.plan9-amd64.tar.gz", "go1.99.0.linux-amd64.tar.gz"} {
		_, err := e.svc.Archive(ctx, name, false)
		var nf *toolchain.NotFoundError
		if !errors.As(err, &nf) || errclass.Of(err) != errclass.NotExist {
			t.Errorf("%s: err = %v, want a *NotFoundError", name, err)
		}
		if e.site.Requests(name) != 0 {
			t.Errorf("%s was requested from the site", name)
		}
	}
	// The listing was fetched once: the first request's fetch was fresh,
	// so no refresh; the second is within RefreshAfter.
	if n := e.site.Requests("?mode=json&include=all"); n != 1 {
		t.Errorf("%d listing fetches, want 1", n)
	}
	for _, name := range []string{"../objects/x.zip", "go1.30.1.linux-amd64.tar.gz.exe", "notgo.tar.gz", "go.zip", ".go1.zip", "go1/x.zip"} {
		if _, err := e.svc.Archive(ctx, name, false); errclass.Of(err) != errclass.NotExist {
			t.Errorf("%q: err = %v, want not found", name, err)
		}
	}
	if n := e.site.Requests("?mode=json&include=all"); n != 1 {
		t.Errorf("invalid names fetched the listing: %d fetches", n)
	}
}

func TestNewReleaseRefreshesListing(t *testing.T) {
	e := newEnv(t, func(o *toolchain.Options) { o.TTL = time.Hour })
	ctx := context.Background()
	if _, err := e.svc.Listing(ctx, true, false); err != nil {
		t.Fatal(err)
	}
	next := toolchaintest.Archive("go1.30.2", "go1.30.2.linux-amd64.tar.gz", 1<<20)
	e.site.Add(next)
	e.clock.Advance(time.Minute) // past RefreshAfter, within the TTL
	a, err := e.svc.Archive(ctx, next.Name, false)
	if err != nil {
		t.Fatalf("a file the cached listing does not name yet: %v", err)
	}
	if !bytes.Equal(read(t, a), next.Data) || e.site.Requests("?mode=json&include=all") != 2 {
		t.Errorf("listing fetches %d, want 2", e.site.Requests("?mode=json&include=all"))
	}
}

// missCounter is a store that counts the Opens of one key that found nothing.
type missCounter struct {
	*storagefs.Store
	key    string
	misses atomic.Int32
}

func (m *missCounter) Open(ctx context.Context, key string) (storage.Object, error) {
	o, err := m.Store.Open(ctx, key)
	if key == m.key && errors.Is(err, iofs.ErrNotExist) {
		m.misses.Add(1)
	}
	return o, err
}

func TestConcurrentRequestsCoalesced(t *testing.T) {
	var store *missCounter
	e := newEnv(t, func(o *toolchain.Options) {
		store = &missCounter{Store: o.Store.(*storagefs.Store), key: toolchain.ArchiveKey(linux)}
		o.Store = store
	})
	// The site holds the download until every request has found the
	// archive missing, so that all of them want it while it is fetched.
	release := e.site.Hold()
	defer release()
	const n = 20
	var wg sync.WaitGroup
	outcomes := make([]toolchain.Outcome, n)
	errs := make([]error, n)
	for i := range n {
		wg.Go(func() {
			a, err := e.svc.Archive(context.Background(), linux, false)
			if err != nil {
				errs[i] = err
				return
			}
			defer a.Close()
			outcomes[i] = a.Outcome
			b, err := io.ReadAll(a)
			if err == nil && !bytes.Equal(b, e.file(linux).Data) {
				err = errors.New("wrong content")
			}
			errs[i] = err
		})
	}
	waitFor(t, "every request to find the archive missing and the download to start", func() bool {
		return store.misses.Load() == n && e.site.Requests(linux) == 1
	})
	release()
	wg.Wait()
	count := map[toolchain.Outcome]int{}
	for i := range n {
		if errs[i] != nil {
			t.Errorf("request %d: %v", i, errs[i])
		}
		count[outcomes[i]]++
	}
	if got := e.site.Requests(linux); got != 1 || count[toolchain.Miss] != 1 || count[toolchain.Coalesced] != n-1 {
		t.Errorf("%d downloads from the site for %d requests, outcomes %v; want 1 download, 1 miss, %d coalesced", got, n, count, n-1)
	}
}

func TestOfflineServesStoredOnly(t *testing.T) {
	e := newEnv(t, nil)
	ctx := context.Background()
	a, err := e.svc.Archive(ctx, linux, false)
	if err != nil {
		t.Fatal(err)
	}
	a.Close()
	e.svc.SetOffline(true)
	e.clock.Advance(48 * time.Hour) // the listing is far past its TTL and stale_if_error
	a, err = e.svc.Archive(ctx, linux, false)
	if err != nil {
		t.Fatalf("stored archive offline: %v", err)
	}
	if !bytes.Equal(read(t, a), e.file(linux).Data) {
		t.Error("wrong content offline")
	}
	_, err = e.svc.Archive(ctx, windows, false)
	var nf *toolchain.NotFoundError
	if !errors.As(err, &nf) {
		t.Errorf("archive not stored, offline: err = %v, want a *NotFoundError", err)
	}
	l, err := e.svc.Listing(ctx, true, false)
	if err != nil || l.Outcome != toolchain.Stale || l.Warning == "" {
		t.Errorf("stored listing offline: %+v, %v; want it served stale", l, err)
	}
	if _, err := e.svc.Listing(ctx, false, false); !errors.As(err, &nf) {
		t.Errorf("listing never fetched, offline: err = %v, want a *NotFoundError", err)
	}
	// The recorded hash of a stored archive is known offline; that of one
	// not stored comes from the stored listing.
	if sum, err := e.svc.SHA256(ctx, linux, false); err != nil || sum != e.file(linux).SHA256() {
		t.Errorf("SHA256 offline = %s, %v", sum, err)
	}
	if sum, err := e.svc.SHA256(ctx, windows, false); err != nil || sum != e.file(windows).SHA256() {
		t.Errorf("SHA256 offline from the listing = %s, %v", sum, err)
	}
	if e.site.Requests(windows) != 0 || e.site.Requests("?mode=json") != 0 || e.site.Requests("?mode=json&include=all") != 1 {
		t.Error("the site was asked in cache-only mode")
	}
	// A request's own cache-only flag works without the mode.
	e.svc.SetOffline(false)
	if _, err := e.svc.Archive(ctx, windows, true); !errors.As(err, &nf) {
		t.Errorf("cache-only request: err = %v, want a *NotFoundError", err)
	}
}

func TestSiteDownServesStaleListing(t *testing.T) {
	e := newEnv(t, nil)
	ctx := context.Background()
	fresh, err := e.svc.Listing(ctx, true, false)
	if err != nil {
		t.Fatal(err)
	}
	e.site.SetDown(true)
	e.clock.Advance(10 * time.Minute) // past the TTL, within stale_if_error
	l, err := e.svc.Listing(ctx, true, false)
	if err != nil {
		t.Fatalf("site down: %v", err)
	}
	if l.Outcome != toolchain.Stale || l.Warning != `111 - "Revalidation Failed"` || !bytes.Equal(l.Data, fresh.Data) {
		t.Errorf("site down: %s %q", l.Outcome, l.Warning)
	}
	if e.site.Requests("?mode=json&include=all") < 2 {
		t.Error("the site was not asked again")
	}
	// An archive the stale listing names cannot be fetched: the site's failure.
	if _, err := e.svc.Archive(ctx, windows, false); errclass.Of(err) != errclass.Unavailable {
		t.Errorf("archive with the site down: %v (class %v), want unavailable", err, errclass.Of(err))
	}
	// Past stale_if_error the failure is the answer.
	e.clock.Advance(2 * time.Hour)
	if _, err := e.svc.Listing(ctx, true, false); errclass.Of(err) != errclass.Unavailable {
		t.Errorf("past stale_if_error: %v (class %v), want unavailable", err, errclass.Of(err))
	}
}

func TestTooLargeRefused(t *testing.T) {
	e := newEnv(t, func(o *toolchain.Options) { o.MaxSize = 1 << 20 })
	_, err := e.svc.Archive(context.Background(), linux, false)
	var tl *toolchain.TooLargeError
	if !errors.As(err, &tl) || errclass.Of(err) != errclass.Denied {
		t.Fatalf("err = %v, want a *TooLargeError", err)
	}
	if e.site.Requests(linux) != 0 || e.stored(t, toolchain.ArchiveKey(linux)) {
		t.Error("an archive over the limit by the listing's size was fetched or stored")
	}
}

func TestInvalidListingNotStored(t *testing.T) {
	e := newEnv(t, nil)
	ctx := context.Background()
	bad := toolchaintest.New(t)
	bad.SetListing("<html>not json</html>")
	site, err := proxyclient.NewSite(bad.URL, proxyclient.Options{})
	if err != nil {
		t.Fatal(err)
	}
	svc := toolchain.New(toolchain.Options{Site: site, Store: e.store, TempDir: e.store.TempDir()})
	defer svc.Close()
	_, err = svc.Listing(ctx, true, false)
	var ie *toolchain.InvalidError
	if !errors.As(err, &ie) || errclass.Of(err) != errclass.Integrity {
		t.Fatalf("err = %v, want an *InvalidError", err)
	}
	if e.stored(t, toolchain.ListingAllKey) {
		t.Error("an invalid listing was stored")
	}
}

// waitFor polls cond (a state other goroutines reach) for up to 30 s.
func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(time.Millisecond)
	}
}

func TestFetchOutlivesItsCaller(t *testing.T) {
	e := newEnv(t, nil)
	release := e.site.Hold()
	defer release()
	ctx, cancel := context.WithCancel(context.Background())
	errc := make(chan error, 1)
	go func() {
		_, err := e.svc.Archive(ctx, linux, false)
		errc <- err
	}()
	waitFor(t, "the download to start", func() bool { return e.site.Requests(linux) == 1 })
	cancel()
	if err := <-errc; !errors.Is(err, context.Canceled) {
		t.Fatalf("caller gone: err = %v, want context.Canceled", err)
	}
	release()
	waitFor(t, "the fetch to store the archive", func() bool { return e.stored(t, toolchain.ArchiveKey(linux)) })
	a, err := e.svc.Archive(context.Background(), linux, false)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(read(t, a), e.file(linux).Data) || e.site.Requests(linux) != 1 {
		t.Errorf("%d downloads, want 1", e.site.Requests(linux))
	}
}

func TestCloseCancelsFetches(t *testing.T) {
	e := newEnv(t, nil)
	release := e.site.Hold()
	defer release()
	errc := make(chan error, 1)
	go func() {
		_, err := e.svc.Archive(context.Background(), linux, false)
		errc <- err
	}()
	waitFor(t, "the download to start", func() bool { return e.site.Requests(linux) == 1 })
	e.svc.Close() // returns once the fetch has ended
	if err := <-errc; err == nil {
		t.Fatal("a fetch cancelled by Close succeeded")
	}
	if e.stored(t, toolchain.ArchiveKey(linux)) {
		t.Error("a cancelled fetch stored the archive")
	}
	if _, err := e.svc.Archive(context.Background(), windows, false); err == nil {
		t.Error("a fetch after Close succeeded")
	}
}
