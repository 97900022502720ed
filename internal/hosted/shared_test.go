package hosted_test

import (
	"bytes"
	"context"
	"errors"
	"testing"
	"time"

	"github.com/modproxy/modproxy/internal/background"
	"github.com/modproxy/modproxy/internal/coord/coordtest"
	"github.com/modproxy/modproxy/internal/coord/rediscoord"
	"github.com/modproxy/modproxy/internal/hosted"
)

// TestSharedServicesTellEachOther: two services on one bucket and one
// real Redis. A publish on one reaches the other's log through the
// coordinator, without a request asking for it (the periodic Sync is 30 s
// away); with Redis down, publishing is refused rather than done without
// the cluster lock, and works again once Redis is back.
func TestSharedServicesTellEachOther(t *testing.T) {
	redis := coordtest.Start(t)
	st, key := sharedBucket(t)
	newService := func() *hosted.Service {
		co := rediscoord.New(rediscoord.Options{Addr: redis.Addr})
		t.Cleanup(func() { co.Close() })
		f := newFixture(t)
		f.opts.Store, f.opts.TempDir, f.opts.Shared, f.opts.Key, f.opts.Coordinator = st, t.TempDir(), true, key, co
		f.reopen(t)
		return f.svc
	}
	a, b := newService(), newService()
	ctx, cancel := context.WithCancel(context.Background())
	g := background.New(nil)
	defer func() { cancel(); g.Close() }()
	b.Run(ctx, g)
	time.Sleep(300 * time.Millisecond) // b's subscription up

	upload := func(s *hosted.Service, version string) (hosted.Result, error) {
		zip, mod := moduleZip(t, "corp.example.com/lib", version, libFiles("const X = 1"))
		return s.Publish(ctx, hosted.Upload{Module: "corp.example.com/lib", Version: version, Mod: mod, Zip: bytes.NewReader(zip), Identity: "ci"})
	}
	res, err := upload(a, "v1.0.0")
	if err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(10 * time.Second)
	for {
		if e, ok := b.Log().Lookup("corp.example.com/lib", "v1.0.0"); ok {
			if e.Zip != res.Zip || e.Index != res.Index {
				t.Fatalf("b's entry %+v, published %+v", e, res)
			}
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("the other replica did not read the new record within 10 s of being told")
		}
		time.Sleep(20 * time.Millisecond)
	}

	redis.Stop()
	if _, err := upload(a, "v1.1.0"); !errors.Is(err, hosted.ErrUnavailable) {
		t.Fatalf("publish with Redis down: %v, want ErrUnavailable", err)
	}
	if _, ok := a.Log().Lookup("corp.example.com/lib", "v1.1.0"); ok {
		t.Fatal("a refused publish was logged")
	}
	redis.Restart()
	deadline = time.Now().Add(10 * time.Second)
	for {
		_, err := upload(b, "v1.1.0")
		if err == nil {
			break
		}
		if !errors.Is(err, hosted.ErrUnavailable) || time.Now().After(deadline) {
			t.Fatalf("publish after Redis is back: %v", err)
		}
		time.Sleep(100 * time.Millisecond)
	}
}
