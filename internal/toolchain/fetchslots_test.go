package toolchain_test

import (
	"bytes"
	"context"
	"errors"
	"io"
	"strings"
	"sync"
	"testing"
	"testing/synctest"

	storagefs "github.com/modproxy/modproxy/internal/storage/fs"
	"github.com/modproxy/modproxy/internal/toolchain"
	"github.com/modproxy/modproxy/internal/toolchain/toolchaintest"
	"github.com/modproxy/modproxy/internal/upstream"
)

// memSite is the fake site served from memory (no network, so that
// synctest sees who waits): archive downloads wait for release.
type memSite struct {
	listing []byte
	files   map[string][]byte
	release chan struct{}

	mu             sync.Mutex
	inFlight, most int
	requests       map[string]int
}

func (m *memSite) Fetch(ctx context.Context, path string) (*upstream.Response, error) {
	if strings.HasPrefix(path, "?") {
		return &upstream.Response{Body: io.NopCloser(bytes.NewReader(m.listing)), Size: int64(len(m.listing)), Source: "mem"}, nil
	}
	data, ok := m.files[path]
	if !ok {
		return nil, &upstream.Error{Upstream: "mem", Path: path, Status: 404}
	}
	m.mu.Lock()
	m.requests[path]++
	m.inFlight++
	m.most = max(m.most, m.inFlight)
	m.mu.Unlock()
	defer func() {
		m.mu.Lock()
		m.inFlight--
		m.mu.Unlock()
	}()
	select {
	case <-m.release:
	case <-ctx.Done():
		return nil, ctx.Err()
	}
	return &upstream.Response{Body: io.NopCloser(bytes.NewReader(data)), Size: int64(len(data)), Source: "mem"}, nil
}

func (m *memSite) stats(name string) (inFlight, most, requests int) {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.inFlight, m.most, m.requests[name]
}

type result struct {
	out toolchain.Outcome
	err error
}

// slotted runs test in a synctest bubble with a service of one fetch
// slot on a memSite; get asks for an archive in a goroutine.
func slotted(t *testing.T, test func(t *testing.T, site *memSite, get func(ctx context.Context, name string) <-chan result)) {
	listing := toolchaintest.New(t, testFiles()...).Listing(true) // the fake's HTTP stays outside the bubble
	synctest.Test(t, func(t *testing.T) {
		site := &memSite{listing: listing, files: map[string][]byte{}, release: make(chan struct{}), requests: map[string]int{}}
		for _, f := range testFiles() {
			site.files[f.Name] = f.Data
		}
		store, err := storagefs.New(t.TempDir())
		if err != nil {
			t.Fatal(err)
		}
		svc := toolchain.New(toolchain.Options{Site: site, Store: store, TempDir: store.TempDir(), MaxFetches: 1})
		t.Cleanup(svc.Close)
		test(t, site, func(ctx context.Context, name string) <-chan result {
			ch := make(chan result, 1)
			go func() {
				a, err := svc.Archive(ctx, name, false)
				if err != nil {
					ch <- result{err: err}
					return
				}
				defer a.Close()
				b, err := io.ReadAll(a)
				if err == nil && !bytes.Equal(b, site.files[name]) {
					err = errors.New("wrong content")
				}
				ch <- result{a.Outcome, err}
			}()
			return ch
		})
	})
}

// TestArchiveFetchesBounded: with dl.max_fetches 1, a request for another
// archive waits while one is fetched, and leaves no fetch behind when it
// gives up waiting; a request for the archive being fetched joins it.
func TestArchiveFetchesBounded(t *testing.T) {
	slotted(t, func(t *testing.T, site *memSite, get func(ctx context.Context, name string) <-chan result) {
		first := get(context.Background(), linux)
		synctest.Wait()
		ctx, cancel := context.WithCancel(context.Background())
		gaveUp := get(ctx, windows)
		waits := get(context.Background(), older)
		joins := get(context.Background(), linux)
		synctest.Wait()
		if inFlight, _, _ := site.stats(linux); inFlight != 1 {
			t.Fatalf("%d archive downloads at a time, want 1 (dl.max_fetches)", inFlight)
		}
		cancel()
		if r := <-gaveUp; !errors.Is(r.err, context.Canceled) {
			t.Fatalf("a request that gave up waiting: %v, want context.Canceled", r.err)
		}
		close(site.release)
		for what, ch := range map[string]<-chan result{"first": first, "waiting": waits, "joining": joins} {
			if r := <-ch; r.err != nil {
				t.Errorf("%s request: %v", what, r.err)
			} else if what == "joining" && r.out != toolchain.Coalesced {
				t.Errorf("joining request: outcome %s, want coalesced", r.out)
			}
		}
		synctest.Wait()
		_, most, gone := site.stats(windows)
		_, _, linuxN := site.stats(linux)
		if most != 1 || gone != 0 || linuxN != 1 {
			t.Errorf("at most %d downloads at a time (want 1); %d of the archive nobody waits for any more (want 0); %d of the joined one (want 1)", most, gone, linuxN)
		}
	})
}

// TestSlotWaitHandedOver: when the request that waits for a fetch slot
// on behalf of every caller of an archive gives up, a caller still
// waiting takes its place and is served.
func TestSlotWaitHandedOver(t *testing.T) {
	slotted(t, func(t *testing.T, site *memSite, get func(ctx context.Context, name string) <-chan result) {
		first := get(context.Background(), linux)
		synctest.Wait()
		ctx, cancel := context.WithCancel(context.Background())
		gaveUp := get(ctx, windows)
		synctest.Wait()
		stays := get(context.Background(), windows)
		synctest.Wait()
		cancel()
		if r := <-gaveUp; !errors.Is(r.err, context.Canceled) {
			t.Fatalf("the request that gave up: %v, want context.Canceled", r.err)
		}
		close(site.release)
		if r := <-first; r.err != nil {
			t.Fatal(r.err)
		}
		if r := <-stays; r.err != nil || r.out != toolchain.Miss {
			t.Errorf("the request still waiting: %s, %v; want it to fetch the archive itself (miss)", r.out, r.err)
		}
		if _, most, n := site.stats(windows); most != 1 || n != 1 {
			t.Errorf("%d downloads of %s, at most %d at a time; want 1, 1", n, windows, most)
		}
	})
}
