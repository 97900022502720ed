package rediscoord_test

import (
	"context"
	"errors"
	"runtime"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/modproxy/modproxy/internal/coord"
	"github.com/modproxy/modproxy/internal/coord/coordtest"
	"github.com/modproxy/modproxy/internal/coord/rediscoord"
)

func TestLocksAndEvents(t *testing.T) {
	r := coordtest.Start(t)
	a := rediscoord.New(rediscoord.Options{Addr: r.Addr})
	b := rediscoord.New(rediscoord.Options{Addr: r.Addr})
	defer a.Close()
	defer b.Close()
	ctx := context.Background()
	if err := a.Ping(ctx); err != nil {
		t.Fatal(err)
	}
	// One holder at a time, across clients, and renewed past its TTL.
	// The TTL is long enough that a renewal delayed by a busy machine
	// (renewals run every TTL/3) does not lose the lease.
	la, ok, err := a.TryLock(ctx, "fill:x", time.Second)
	if err != nil || !ok {
		t.Fatalf("first TryLock: %v %v", ok, err)
	}
	time.Sleep(2500 * time.Millisecond) // > 2 TTLs: renewal keeps it
	if _, ok, _ := b.TryLock(ctx, "fill:x", time.Second); ok {
		t.Fatal("a second replica took a held lock")
	}
	if err := la.Release(ctx); err != nil {
		t.Fatal(err)
	}
	lb, ok, err := b.TryLock(ctx, "fill:x", time.Second)
	if err != nil || !ok {
		t.Fatalf("TryLock after release: %v %v", ok, err)
	}
	lb.Release(ctx)

	// 20 contenders: exactly one wins.
	var wins atomic.Int32
	var wg sync.WaitGroup
	for range 20 {
		wg.Go(func() {
			if _, ok, err := a.TryLock(ctx, "gc-leader", time.Second); err == nil && ok {
				wins.Add(1)
			}
		})
	}
	wg.Wait()
	if wins.Load() != 1 {
		t.Fatalf("%d replicas won the lock", wins.Load())
	}

	// Events reach every subscriber.
	sctx, cancel := context.WithCancel(ctx)
	defer cancel()
	got := make(chan string, 4)
	subscribed := make(chan struct{})
	go func() {
		defer close(subscribed)
		b.Subscribe(sctx, func(m string) { got <- m })
	}()
	defer func() { cancel(); <-subscribed }()
	time.Sleep(200 * time.Millisecond)
	if err := a.Publish(ctx, "invalidate example.com/a/@v/list"); err != nil {
		t.Fatal(err)
	}
	select {
	case m := <-got:
		if m != "invalidate example.com/a/@v/list" {
			t.Fatalf("got %q", m)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("event not delivered")
	}
}

func TestRedisDownAndBack(t *testing.T) {
	r := coordtest.Start(t)
	c := rediscoord.New(rediscoord.Options{Addr: r.Addr, Timeout: 300 * time.Millisecond})
	defer c.Close()
	ctx := context.Background()
	l, ok, err := c.TryLock(ctx, "fill:y", 300*time.Millisecond)
	if err != nil || !ok {
		t.Fatal(err)
	}
	r.Stop()
	if _, _, err := c.TryLock(ctx, "fill:z", time.Second); !errors.Is(err, coord.ErrUnavailable) {
		t.Fatalf("TryLock with redis down = %v, want ErrUnavailable", err)
	}
	select {
	case <-l.Lost():
	case <-time.After(3 * time.Second):
		t.Fatal("lease loss not reported")
	}
	r.Restart()
	deadline := time.Now().Add(10 * time.Second)
	for c.Ping(ctx) != nil {
		if time.Now().After(deadline) {
			t.Fatal("no reconnection")
		}
		time.Sleep(50 * time.Millisecond)
	}
	if _, ok, err := c.TryLock(ctx, "fill:z", time.Second); err != nil || !ok {
		t.Fatalf("after restart: %v %v", ok, err)
	}
}

func TestAccessStatsMerge(t *testing.T) {
	r := coordtest.Start(t)
	a := rediscoord.New(rediscoord.Options{Addr: r.Addr})
	b := rediscoord.New(rediscoord.Options{Addr: r.Addr})
	defer a.Close()
	defer b.Close()
	ctx := context.Background()
	t1, t2 := time.Unix(1000, 0), time.Unix(2000, 0)
	if err := a.PushAccess(ctx, map[string]coord.Access{"k1": {Last: t2, Hits: 3}, "k2": {Last: t1, Hits: 1}}); err != nil {
		t.Fatal(err)
	}
	if err := b.PushAccess(ctx, map[string]coord.Access{"k1": {Last: t1, Hits: 2}, "k2": {Last: t2, Hits: 5}}); err != nil {
		t.Fatal(err)
	}
	got, err := a.PullAccess(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if got["k1"].Hits != 5 || !got["k1"].Last.Equal(t2) || got["k2"].Hits != 6 || !got["k2"].Last.Equal(t2) {
		t.Fatalf("merged %+v", got)
	}
}

// running returns the stacks of goroutines executing this package's code.
func running() []string {
	buf := make([]byte, 1<<20)
	buf = buf[:runtime.Stack(buf, true)]
	var out []string
	for g := range strings.SplitSeq(string(buf), "\n\n") {
		if strings.Contains(g, "/coord/rediscoord.(") {
			out = append(out, g)
		}
	}
	return out
}

// TestCloseJoinsRenewals: Release and Close return only once the lease
// renewals they stop have ended; nothing of the coordinator runs after
// Close.
func TestCloseJoinsRenewals(t *testing.T) {
	r := coordtest.Start(t)
	c := rediscoord.New(rediscoord.Options{Addr: r.Addr})
	ctx := context.Background()
	released, ok, err := c.TryLock(ctx, "released", 30*time.Second)
	if err != nil || !ok {
		t.Fatalf("TryLock: %v %v", ok, err)
	}
	if _, ok, err := c.TryLock(ctx, "held", 30*time.Second); err != nil || !ok {
		t.Fatalf("TryLock: %v %v", ok, err)
	}
	defer c.Close()
	// The renewals have started (a goroutine may not have run yet).
	for deadline := time.Now().Add(5 * time.Second); len(running()) != 2; time.Sleep(time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatalf("%d renewals running, want 2", len(running()))
		}
	}
	if err := released.Release(ctx); err != nil {
		t.Fatal(err)
	}
	if g := running(); len(g) != 1 {
		t.Fatalf("after Release: %d renewals running, want 1:\n%s", len(g), strings.Join(g, "\n\n"))
	}
	if err := c.Close(); err != nil {
		t.Fatal(err)
	}
	if g := running(); len(g) != 0 {
		t.Fatalf("after Close:\n%s", strings.Join(g, "\n\n"))
	}
	if _, _, err := c.TryLock(ctx, "late", time.Second); err == nil {
		t.Error("TryLock after Close succeeded")
	}
}

// TestSubscribeReturns: Subscribe blocks until its context is done and
// leaves nothing behind, so that its caller can own it.
func TestSubscribeReturns(t *testing.T) {
	r := coordtest.Start(t)
	c := rediscoord.New(rediscoord.Options{Addr: r.Addr})
	defer c.Close()
	ctx, cancel := context.WithCancel(context.Background())
	got := make(chan string, 100)
	done := make(chan struct{})
	go func() {
		defer close(done)
		c.Subscribe(ctx, func(m string) { got <- m })
	}()
	// Subscribed once a message comes through.
	deadline := time.Now().Add(5 * time.Second)
	for delivered := false; !delivered; {
		if err := c.Publish(context.Background(), "hello"); err != nil {
			t.Fatal(err)
		}
		select {
		case <-got:
			delivered = true
		case <-time.After(50 * time.Millisecond):
			if time.Now().After(deadline) {
				t.Fatal("no message delivered")
			}
		}
	}
	select {
	case <-done:
		t.Fatal("Subscribe returned before its context was done")
	default:
	}
	cancel()
	<-done
	if g := running(); len(g) != 0 {
		t.Fatalf("after Subscribe returned:\n%s", strings.Join(g, "\n\n"))
	}
}
