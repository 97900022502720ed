package proxy_test

import (
	"bytes"
	"context"
	"net/http"
	"strconv"
	"testing"
	"time"

	"github.com/modproxy/modproxy/internal/cachepolicy"
	"github.com/modproxy/modproxy/internal/proxy"
)

// TestMemoryHit checks a small immutable hit from memory: the stored
// bytes, readable more than once across results, its age on the service's
// clock, and the preformatted header values of its memory body.
func TestMemoryHit(t *testing.T) {
	f := newFixture(t, cachepolicy.Default())
	req := mustParse(t, "example.com/a/@v/v1.0.0.mod")
	want := f.up.ModBytes("example.com/a", "v1.0.0")
	ctx := context.Background()
	for i, wantOutcome := range []proxy.Outcome{proxy.Miss, proxy.Hit, proxy.Hit, proxy.Hit} {
		if i == 3 {
			f.clock.Add(time.Hour)
		}
		res, err := f.svc.Get(ctx, req)
		if err != nil {
			t.Fatal(err)
		}
		if res.Outcome != wantOutcome {
			t.Errorf("request %d: outcome %s, want %s", i, res.Outcome, wantOutcome)
		}
		if i < 2 {
			if got := read(t, res); !bytes.Equal(got, want) {
				t.Errorf("request %d: read %q, want %q", i, got, want)
			}
			continue // the miss is served from the fill, the first hit from the store (keeping the bytes)
		}
		m := res.Mem
		if m == nil {
			t.Fatalf("request %d: not from memory", i)
		}
		info := res.Object.Info()
		if !bytes.Equal(m.Data, want) || m.LastModified[0] != info.ModTime.UTC().Format(http.TimeFormat) ||
			m.ETag[0] != proxy.ETag(info.Size, info.ModTime) || m.ContentLength[0] != strconv.Itoa(len(want)) {
			t.Errorf("request %d: memory body %q, %v, %v, %v", i, m.Data, m.LastModified, m.ETag, m.ContentLength)
		}
		if wantAge := f.clock.Now().Sub(info.ModTime); res.Age != max(wantAge, 0) {
			t.Errorf("request %d: age %v, want %v", i, res.Age, wantAge)
		}
		if got := read(t, res); !bytes.Equal(got, want) {
			t.Errorf("request %d: read %q, want %q", i, got, want)
		}
	}
}
