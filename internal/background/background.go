// Package background gives goroutines an owner. A Group starts them,
// Close cancels them and waits until every one has returned, so that an
// owner's Close can promise that nothing it started still runs (and the
// services those goroutines use can be closed next).
//
// A panic in a goroutine, or in one round of a loop, is logged with its
// stack and survived: a goroutine started with Go ends, a loop started
// with Every or Loop carries on at its next round. The process keeps serving.
package background

import (
	"context"
	"log/slog"
	"runtime/debug"
	"sync"
	"time"
)

// Group owns goroutines. The zero value is not usable; call New. A Group
// is safe for concurrent use.
type Group struct {
	log    *slog.Logger
	ctx    context.Context // done once Close begins
	cancel context.CancelFunc
	mu     sync.Mutex // guards closed against wg.Add racing wg.Wait
	closed bool
	wg     sync.WaitGroup
}

// New returns a Group that logs panics to log (nil discards).
func New(log *slog.Logger) *Group {
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	ctx, cancel := context.WithCancel(context.Background())
	return &Group{log: log, ctx: ctx, cancel: cancel}
}

// Go runs fn in a goroutine owned by the group. The context fn gets is
// done when ctx is done or when Close begins; fn must return soon after.
// Go reports false, and does not run fn, once Close has begun. name
// identifies the goroutine in logs.
func (g *Group) Go(ctx context.Context, name string, fn func(ctx context.Context)) bool {
	g.mu.Lock()
	defer g.mu.Unlock()
	if g.closed {
		return false
	}
	g.wg.Go(func() {
		ctx, cancel := context.WithCancel(ctx)
		defer cancel()
		stop := context.AfterFunc(g.ctx, cancel)
		defer stop()
		g.Safely(name, func() { fn(ctx) })
	})
	return true
}

// Every runs fn every interval (the first time one interval after the
// call) until ctx is done or Close begins. A round that panics is logged
// and the loop goes on. It reports false once Close has begun.
func (g *Group) Every(ctx context.Context, name string, every time.Duration, fn func(ctx context.Context)) bool {
	return g.Loop(ctx, name, every, func(ctx context.Context) time.Duration {
		fn(ctx)
		return every
	})
}

// Loop is Every with a wait of its own before each round: fn runs first
// after the wait first, then after each wait it returns (a round that
// panics keeps the previous wait).
func (g *Group) Loop(ctx context.Context, name string, first time.Duration, fn func(ctx context.Context) (next time.Duration)) bool {
	return g.Go(ctx, name, func(ctx context.Context) {
		wait := first
		t := time.NewTimer(wait)
		defer t.Stop()
		for {
			select {
			case <-ctx.Done():
				return
			case <-t.C:
			}
			if ctx.Err() != nil {
				return
			}
			g.Safely(name, func() { wait = fn(ctx) })
			t.Reset(wait)
		}
	})
}

// Safely runs fn and reports whether it returned normally; a panic is
// logged at error level with its stack instead of ending the process.
// Loops that keep their own timers call it for every round.
func (g *Group) Safely(name string, fn func()) (ok bool) {
	defer func() {
		if v := recover(); v != nil {
			g.log.Error("background task panicked; it carries on", "task", name, "panic", v, "stack", string(debug.Stack()))
			ok = false
		}
	}()
	fn()
	return true
}

// Close cancels every goroutine of the group and waits for them to
// return. Later calls of Go and Every start nothing. Close may be called
// more than once and concurrently; every call waits. It must not be
// called from a goroutine of the group (it would wait for itself).
func (g *Group) Close() {
	g.mu.Lock()
	g.closed = true
	g.cancel()
	g.mu.Unlock()
	g.wg.Wait()
}
