package proxy_test

import (
	"context"
	"testing"
	"time"

	"github.com/modproxy/modproxy/internal/proxy"
	storagefs "github.com/modproxy/modproxy/internal/storage/fs"
	"github.com/modproxy/modproxy/internal/upstream/upstreamtest"
)

// newWarmService is a service with warming set as asked, a verifier that
// passes everything, in front of up.
func newWarmService(t *testing.T, up *upstreamtest.Server, warm bool) *proxy.Service {
	t.Helper()
	store, err := storagefs.New(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	v := &fakeVerifier{err: func(string, string, bool, string) error { return nil }}
	return newService(t, up, proxy.Options{Store: store, TempDir: store.TempDir(), Verifier: v, Warm: warm})
}

func getOutcome(t *testing.T, svc *proxy.Service, key string) proxy.Outcome {
	t.Helper()
	res, err := svc.Get(context.Background(), mustParse(t, key))
	if err != nil {
		t.Fatalf("%s: %v", key, err)
	}
	read(t, res)
	return res.Outcome
}

// TestWarmAfterModMiss: with warming on, a .mod miss fills the version's
// .info and .zip in the background, each fetched upstream once, and the
// go command's later requests for them are hits.
func TestWarmAfterModMiss(t *testing.T) {
	up := upstreamtest.New(t, mods(), upstreamtest.WithoutSumDB())
	svc := newWarmService(t, up, true)
	if o := getOutcome(t, svc, "example.com/a/@v/v1.0.0.mod"); o != proxy.Miss {
		t.Fatalf(".mod: %s, want a miss", o)
	}
	proxy.WaitWarmups(svc)
	for _, k := range []string{"example.com/a/@v/v1.0.0.info", "example.com/a/@v/v1.0.0.zip"} {
		if n := up.Requests(k); n != 1 {
			t.Errorf("%s fetched upstream %d times by the warming, want 1", k, n)
		}
		if o := getOutcome(t, svc, k); o != proxy.Hit {
			t.Errorf("%s after the warming: %s, want a hit", k, o)
		}
	}
	if n := up.Requests("example.com/a/@v/v1.1.0.zip"); n != 0 {
		t.Errorf("another version's zip fetched %d times, want none", n)
	}
}

// TestWarmAfterInfoMiss: an .info miss warms the .zip (not the .mod,
// which the go command has read before).
func TestWarmAfterInfoMiss(t *testing.T) {
	up := upstreamtest.New(t, mods(), upstreamtest.WithoutSumDB())
	svc := newWarmService(t, up, true)
	getOutcome(t, svc, "example.com/a/@v/v1.0.0.info")
	proxy.WaitWarmups(svc)
	if n := up.Requests("example.com/a/@v/v1.0.0.zip"); n != 1 {
		t.Fatalf("zip fetched upstream %d times after the .info miss, want 1", n)
	}
	if o := getOutcome(t, svc, "example.com/a/@v/v1.0.0.zip"); o != proxy.Hit {
		t.Fatalf("zip after the warming: %s, want a hit", o)
	}
}

// TestWarmOffByDefault: without Options.Warm, a .mod miss fetches nothing
// else.
func TestWarmOffByDefault(t *testing.T) {
	up := upstreamtest.New(t, mods(), upstreamtest.WithoutSumDB())
	svc := newWarmService(t, up, false)
	getOutcome(t, svc, "example.com/a/@v/v1.0.0.mod")
	svc.Close()
	if got := up.Log(); len(got) != 1 {
		t.Fatalf("upstream requests %q, want only the .mod", got)
	}
}

// TestWarmCancelledByClose: Close cancels a warming in flight (here a zip
// the upstream never answers) and waits for it.
func TestWarmCancelledByClose(t *testing.T) {
	up := upstreamtest.New(t, mods(), upstreamtest.WithoutSumDB())
	svc := newWarmService(t, up, true)
	up.SetFault("example.com/a/@v/v1.0.0.info", upstreamtest.Fault{Kind: upstreamtest.Hang})
	getOutcome(t, svc, "example.com/a/@v/v1.0.0.mod")
	svc.Close() // returns once the hanging warm fill is cancelled
	proxy.WaitWarmups(svc)
	if n := up.Requests("example.com/a/@v/v1.0.0.zip"); n != 0 {
		t.Fatalf("zip fetched %d times after Close cancelled the warming, want none", n)
	}
}

// TestWarmFailureNotRemembered: a warming whose zip fetch fails leaves
// nothing behind: the client's own request for the zip fetches it.
func TestWarmFailureNotRemembered(t *testing.T) {
	up := upstreamtest.New(t, mods(), upstreamtest.WithoutSumDB())
	svc := newWarmService(t, up, true)
	up.SetFault("example.com/a/@v/v1.0.0.zip", upstreamtest.Fault{Kind: upstreamtest.ServerError})
	getOutcome(t, svc, "example.com/a/@v/v1.0.0.mod")
	proxy.WaitWarmups(svc)
	if n := up.Requests("example.com/a/@v/v1.0.0.zip"); n == 0 {
		t.Fatal("the zip was not warmed")
	}
	up.ClearFaults()
	if o := getOutcome(t, svc, "example.com/a/@v/v1.0.0.zip"); o != proxy.Miss {
		t.Fatalf("zip after a failed warming: %s, want a miss that fetches it", o)
	}
}

// TestWarmStopsInCacheOnly: once cache-only mode is switched on, a
// warming under way starts no further fetch (here the .zip after the
// .info that was being fetched when the switch came).
func TestWarmStopsInCacheOnly(t *testing.T) {
	up := upstreamtest.New(t, mods(), upstreamtest.WithoutSumDB())
	svc := newWarmService(t, up, true)
	up.SetFault("example.com/a/@v/v1.0.0.info", upstreamtest.Fault{Kind: upstreamtest.Delay, Delay: 300 * time.Millisecond})
	getOutcome(t, svc, "example.com/a/@v/v1.0.0.mod")
	for deadline := time.Now().Add(10 * time.Second); up.Requests("example.com/a/@v/v1.0.0.info") == 0; {
		if time.Now().After(deadline) {
			t.Fatal("the warming never asked for the .info")
		}
		time.Sleep(5 * time.Millisecond)
	}
	svc.SetOffline(true)
	proxy.WaitWarmups(svc)
	if n := up.Requests("example.com/a/@v/v1.0.0.info"); n != 1 {
		t.Fatalf(".info fetched %d times, want 1 (the warming under way when cache-only came)", n)
	}
	if n := up.Requests("example.com/a/@v/v1.0.0.zip"); n != 0 {
		t.Errorf("zip fetched %d times after cache-only mode was switched on, want none", n)
	}
}

// TestFillAfterWarmFetchesOnce: a request that found the zip missing just
// before a warming stored it (its fill begins after the warming's ended,
// so the two are not coalesced) is served the stored zip, not a second
// upstream fetch.
func TestFillAfterWarmFetchesOnce(t *testing.T) {
	up := upstreamtest.New(t, mods(), upstreamtest.WithoutSumDB())
	svc := newWarmService(t, up, true)
	getOutcome(t, svc, "example.com/a/@v/v1.0.0.mod")
	proxy.WaitWarmups(svc)
	const zip = "example.com/a/@v/v1.0.0.zip"
	res, err := proxy.FillAndOpen(svc, zip)
	if err != nil {
		t.Fatal(err)
	}
	read(t, res)
	if n := up.Requests(zip); n != 1 {
		t.Errorf("zip fetched upstream %d times, want 1 (by the warming)", n)
	}
	if res.Outcome != proxy.Coalesced {
		t.Errorf("outcome %s, want coalesced (another fill stored it)", res.Outcome)
	}
}
