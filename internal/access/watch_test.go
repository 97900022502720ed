package access

import (
	"context"
	"errors"
	"sync"
	"testing"
	"testing/synctest"
	"time"
)

func TestWatcherPicksUpChangesWithinInterval(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		st := &memState{}
		server := openService(t, Options{State: st})
		w := server.Watch(0)
		defer w.Close()
		cli := openService(t, Options{State: st})

		secret := create(t, cli, "ci", readGrant(t), time.Time{})
		time.Sleep(DefaultInterval - time.Millisecond)
		synctest.Wait()
		if _, err := server.Authenticate(bearer(secret)); !errors.Is(err, ErrRejected) {
			t.Fatalf("before the first tick: %v, want ErrRejected", err)
		}
		time.Sleep(time.Millisecond)
		synctest.Wait()
		if _, err := server.Authenticate(bearer(secret)); err != nil {
			t.Fatalf("one interval after the token was created: %v", err)
		}

		if err := cli.Revoke(context.Background(), "ci"); err != nil {
			t.Fatal(err)
		}
		time.Sleep(DefaultInterval)
		synctest.Wait()
		if _, err := server.Authenticate(bearer(secret)); !errors.Is(err, ErrRejected) {
			t.Fatalf("one interval after the token was revoked: %v, want ErrRejected", err)
		}
	})
}

func TestWatcherNotify(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		st := &memState{}
		server := openService(t, Options{State: st})
		w := server.Watch(time.Hour)
		defer w.Close()
		cli := openService(t, Options{State: st})
		secret := create(t, cli, "ci", readGrant(t), time.Time{})
		w.Notify()
		w.Notify() // merged with the pending one
		synctest.Wait()
		if _, err := server.Authenticate(bearer(secret)); err != nil {
			t.Fatalf("after Notify: %v", err)
		}
	})
}

// blockingState blocks every Read until its context is done.
type blockingState struct {
	memState
	block bool
	once  sync.Once
	in    chan struct{}
}

func (b *blockingState) Read(ctx context.Context) ([]byte, error) {
	if b.block {
		b.once.Do(func() { close(b.in) })
		<-ctx.Done()
		return nil, ctx.Err()
	}
	return b.memState.Read(ctx)
}

func TestWatcherCloseCancelsAReloadAndWaits(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		st := &blockingState{in: make(chan struct{})}
		s := openService(t, Options{State: st})
		st.block = true
		w := s.Watch(time.Second)
		w.Notify()
		<-st.in // a reload is in progress, blocked in the store
		w.Close()
		w.Close() // idempotent
		// synctest.Test fails if the loop's goroutine were still running.
	})
}

func TestWatcherReloadTimeout(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		st := &blockingState{in: make(chan struct{})}
		s := openService(t, Options{State: st})
		cli := openService(t, Options{State: &st.memState})
		st.block = true
		w := s.Watch(time.Hour)
		defer w.Close()
		w.Notify()
		<-st.in // the reload hangs in the store ...
		time.Sleep(reloadTimeout)
		synctest.Wait() // ... until its own deadline ends it
		st.block = false
		secret := create(t, cli, "ci", readGrant(t), time.Time{})
		w.Notify()
		synctest.Wait()
		if _, err := s.Authenticate(bearer(secret)); err != nil {
			t.Fatalf("the reload after a hanging one: %v", err)
		}
	})
}

// panicState panics on its first Read after armed.
type panicState struct {
	memState
	armed bool
}

func (p *panicState) Read(ctx context.Context) ([]byte, error) {
	if p.armed {
		p.armed = false
		panic("store exploded")
	}
	return p.memState.Read(ctx)
}

func TestWatcherSurvivesPanics(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		st := &panicState{}
		s := openService(t, Options{State: st})
		cli := openService(t, Options{State: &st.memState})
		st.armed = true
		w := s.Watch(time.Second)
		defer w.Close()
		time.Sleep(time.Second)
		synctest.Wait()
		secret := create(t, cli, "ci", readGrant(t), time.Time{})
		time.Sleep(time.Second)
		synctest.Wait()
		if _, err := s.Authenticate(bearer(secret)); err != nil {
			t.Fatalf("after a panicking reload, the next one did not run: %v", err)
		}
	})
}
