package access

import (
	"context"
	"fmt"
	"sync"
	"time"
)

// DefaultInterval is the reload period of a Watcher: a running server
// sees a token created or revoked elsewhere within this time (the issue's
// bound is 10 s).
const DefaultInterval = 5 * time.Second

// reloadTimeout bounds one reload (a hanging shared store).
const reloadTimeout = 10 * time.Second

// Watcher reloads a Service's tokens every interval and whenever Notify is
// called. It owns one goroutine, which Close stops and waits for.
type Watcher struct {
	s        *Service
	interval time.Duration
	notify   chan struct{}
	ctx      context.Context
	cancel   context.CancelFunc
	done     chan struct{}
	once     sync.Once
}

// Watch starts reloading s every interval (DefaultInterval if <= 0) until
// the Watcher is closed. Failures are logged by Reload and retried at the
// next tick; a panic in a reload is logged and the loop goes on.
func (s *Service) Watch(interval time.Duration) *Watcher {
	if interval <= 0 {
		interval = DefaultInterval
	}
	ctx, cancel := context.WithCancel(context.Background())
	w := &Watcher{s: s, interval: interval, notify: make(chan struct{}, 1), ctx: ctx, cancel: cancel, done: make(chan struct{})}
	go w.loop()
	return w
}

// Notify asks for a reload now (for example when another replica
// broadcasts a change). It never blocks; notifications that arrive while
// one is pending are merged into it.
func (w *Watcher) Notify() {
	select {
	case w.notify <- struct{}{}:
	default:
	}
}

// Close stops the loop, cancelling a reload in progress, and waits for it
// to end. It is safe to call more than once.
func (w *Watcher) Close() {
	w.once.Do(w.cancel)
	<-w.done
}

func (w *Watcher) loop() {
	defer close(w.done)
	t := time.NewTicker(w.interval)
	defer t.Stop()
	for {
		select {
		case <-w.ctx.Done():
			return
		case <-t.C:
		case <-w.notify:
		}
		w.reload()
	}
}

func (w *Watcher) reload() {
	defer func() {
		if v := recover(); v != nil {
			w.s.log.Error("token reload panicked", "panic", fmt.Sprint(v))
		}
	}()
	ctx, cancel := context.WithTimeout(w.ctx, reloadTimeout)
	defer cancel()
	_ = w.s.Reload(ctx) // logged by Reload; the tokens in force stay
}
