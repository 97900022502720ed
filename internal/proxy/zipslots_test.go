package proxy_test

import (
	"bytes"
	"context"
	"io"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/modproxy/modproxy/internal/cachepolicy"
	"github.com/modproxy/modproxy/internal/proxy"
)

// TestZipChecksAreBounded fills two zips at once with one ZipChecks slot:
// while the first is being checked, the second waits for the slot instead
// of being checked too; both are then served.
func TestZipChecksAreBounded(t *testing.T) {
	f := newFixture(t, cachepolicy.Default(), func(o *proxy.Options) { o.ZipChecks = 1 })
	waiting := make(chan string, 4)
	checking := make(chan string, 4)
	var first atomic.Bool
	proxy.SetZipCheckHooks(f.svc, func(key string) { waiting <- key }, func(key string) {
		if !first.CompareAndSwap(false, true) {
			checking <- key
			return
		}
		select {
		case <-waiting: // the other fill waits for the slot
		case k := <-checking:
			t.Errorf("%s was checked while %s held the only slot", k, key)
		case <-time.After(10 * time.Second):
			t.Error("the second zip's fill neither waited for the slot nor was checked")
		}
	})
	var wg sync.WaitGroup
	for _, k := range []string{"example.com/a/@v/v1.0.0.zip", "example.com/a/@v/v1.1.0.zip"} {
		wg.Go(func() {
			res, err := f.svc.Get(context.Background(), mustParse(t, k))
			if err != nil {
				t.Error(err)
				return
			}
			defer res.Close()
			got, err := io.ReadAll(res.Object)
			if err != nil {
				t.Error(err)
				return
			}
			if want := f.up.ZipBytes("example.com/a", strings.TrimSuffix(strings.TrimPrefix(k, "example.com/a/@v/"), ".zip")); !bytes.Equal(got, want) {
				t.Errorf("%s: %d bytes, not the upstream's %d", k, len(got), len(want))
			}
		})
	}
	wg.Wait()
}
