package cacheadmin_test

import (
	"context"
	"os"
	"path/filepath"
	"slices"
	"sync"
	"testing"
	"testing/synctest"
	"time"

	"github.com/modproxy/modproxy/internal/cacheadmin"
	"github.com/modproxy/modproxy/internal/coord"
)

// fakeCoord is a coordinator in memory. Its GC leader lock is held by
// another replica unless grant is set.
type fakeCoord struct {
	mu           sync.Mutex
	grant        bool
	tryLocks     int
	locks        []*fakeLock
	subscribers  int // running Subscribe calls
	pushes       int
	msgs         chan string
	subscribedCh chan struct{}
}

func newFakeCoord(grant bool) *fakeCoord {
	return &fakeCoord{grant: grant, msgs: make(chan string, 16), subscribedCh: make(chan struct{}, 1)}
}

type fakeLock struct {
	mu       sync.Mutex
	released bool
	lost     chan struct{}
}

func (l *fakeLock) Release(ctx context.Context) error {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.released = true
	return nil
}

func (l *fakeLock) Lost() <-chan struct{} { return l.lost }

func (c *fakeCoord) TryLock(ctx context.Context, name string, ttl time.Duration) (coord.Lock, bool, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.tryLocks++
	if !c.grant {
		return nil, false, nil
	}
	l := &fakeLock{lost: make(chan struct{})}
	c.locks = append(c.locks, l)
	return l, true, nil
}

func (c *fakeCoord) Publish(ctx context.Context, msg string) error {
	c.msgs <- msg
	return nil
}

func (c *fakeCoord) Subscribe(ctx context.Context, fn func(msg string)) {
	c.mu.Lock()
	c.subscribers++
	c.mu.Unlock()
	defer func() {
		c.mu.Lock()
		c.subscribers--
		c.mu.Unlock()
	}()
	for {
		select {
		case <-ctx.Done():
			return
		case m := <-c.msgs:
			fn(m)
		}
	}
}

func (c *fakeCoord) Ping(ctx context.Context) error { return nil }

func (c *fakeCoord) PushAccess(ctx context.Context, stats map[string]coord.Access) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.pushes++
	return nil
}

func (c *fakeCoord) PullAccess(ctx context.Context) (map[string]coord.Access, error) {
	return map[string]coord.Access{}, nil
}

func (c *fakeCoord) state() (tryLocks, subscribers, pushes int) {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.tryLocks, c.subscribers, c.pushes
}

// TestCloseStopsBackground: the GC schedule, the state subscription and
// the gauges run until Close, and nothing of them runs once Close has
// returned.
func TestCloseStopsBackground(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		f := newFixture(t)
		c := newFakeCoord(false) // another replica leads
		s := f.service(t, func(o *cacheadmin.Options) { o.Coordinator = c; o.Interval = time.Minute })
		s.Start(context.Background())
		s.Touch("example.com/a/@v/v1.0.0.zip", time.Now())
		time.Sleep(3*time.Minute + time.Second)
		synctest.Wait()
		tries, subs, pushes := c.state()
		if tries != 3 || subs != 1 || pushes != 1 {
			t.Fatalf("before Close: %d leader elections, %d subscriptions, %d pushes; want 3, 1, 1", tries, subs, pushes)
		}
		s.Close()
		if _, subs, _ := c.state(); subs != 0 {
			t.Fatal("the subscription still runs after Close")
		}
		s.Touch("example.com/a/@v/v1.0.0.zip", time.Now())
		time.Sleep(time.Hour)
		synctest.Wait()
		if tries2, _, pushes2 := c.state(); tries2 != tries || pushes2 != pushes {
			t.Fatalf("after Close: %d leader elections, %d pushes; want %d, %d", tries2, pushes2, tries, pushes)
		}
	})
}

// TestLeader: the replica that takes the GC leader lock runs every
// scheduled GC with it and gives it up at Close.
func TestLeader(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		f := newFixture(t)
		c := newFakeCoord(true)
		s := f.service(t, func(o *cacheadmin.Options) { o.Coordinator = c; o.Interval = time.Minute })
		s.Start(context.Background())
		time.Sleep(2*time.Minute + time.Second)
		synctest.Wait()
		if tries, _, _ := c.state(); tries != 1 {
			t.Errorf("%d leader elections, want 1 (the leader keeps its lock)", tries)
		}
		if s.Summary(context.Background()).LastGC == nil {
			t.Error("the leader ran no GC")
		}
		s.Close()
		c.mu.Lock()
		defer c.mu.Unlock()
		if len(c.locks) != 1 || !c.locks[0].released {
			t.Error("the GC leader lock was not released at Close")
		}
	})
}

// TestReload: a state broadcast reloads pins and blocks; a callback that
// panics does not end the subscription, and a state file that cannot be
// read leaves the state as it was.
func TestReload(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		f := newFixture(t)
		c := newFakeCoord(false)
		var mu sync.Mutex
		var calls [][]cacheadmin.Block
		s := f.service(t, func(o *cacheadmin.Options) {
			o.Coordinator = c
			o.Shared = true
			o.OnBlocks = func(b []cacheadmin.Block) {
				mu.Lock()
				calls = append(calls, b)
				n := len(calls)
				mu.Unlock()
				if n == 1 {
					panic("applying blocks failed")
				}
			}
		})
		other := f.service(t, func(o *cacheadmin.Options) { o.Shared = true })
		s.Start(context.Background())
		ctx := context.Background()
		f.put(t, "example.com/a", "v1.0.0")
		// Another replica blocks; this one hears of it twice (the first
		// callback panics).
		if _, err := other.Purge(ctx, "test", cacheadmin.PurgeRequest{Module: "example.com/a", Reason: "x", Block: true}); err != nil {
			t.Fatal(err)
		}
		for range 2 {
			if err := c.Publish(ctx, "state"); err != nil {
				t.Fatal(err)
			}
			synctest.Wait()
		}
		mu.Lock()
		n := len(calls)
		mu.Unlock()
		if n != 2 {
			t.Fatalf("OnBlocks called %d times, want 2", n)
		}
		if got := s.Blocks(); len(got) != 1 || got[0].Match != "example.com/a" {
			t.Fatalf("blocks after reload %+v", got)
		}
		// A broken state file: the reload fails, the state stays.
		if err := other.AddPin(ctx, "test", cacheadmin.Pin{Pattern: "example.com/p"}); err != nil {
			t.Fatal(err)
		}
		if err := c.Publish(ctx, "state"); err != nil {
			t.Fatal(err)
		}
		synctest.Wait()
		if err := os.WriteFile(filepath.Join(f.dir, "cache", "objects", "_state", "pins.json"), []byte("{broken"), 0o644); err != nil {
			t.Fatal(err)
		}
		if err := c.Publish(ctx, "state"); err != nil {
			t.Fatal(err)
		}
		synctest.Wait()
		if got := s.Pins(ctx).Patterns; !slices.Equal(got, []string{"example.com/p"}) {
			t.Errorf("pins after a failed reload %v, want them kept", got)
		}
		s.Close()
	})
}
