package bench

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/modproxy/modproxy/internal/app"
	"github.com/modproxy/modproxy/internal/artifact"
	"github.com/modproxy/modproxy/internal/audit"
	"github.com/modproxy/modproxy/internal/cachepolicy"
	"github.com/modproxy/modproxy/internal/config"
	"github.com/modproxy/modproxy/internal/coord/coordtest"
	"github.com/modproxy/modproxy/internal/gc"
	"github.com/modproxy/modproxy/internal/index"
	"github.com/modproxy/modproxy/internal/proxy"
	storagefs "github.com/modproxy/modproxy/internal/storage/fs"
	"github.com/modproxy/modproxy/internal/storage/s3/s3test"
	"github.com/modproxy/modproxy/internal/trash"
	"github.com/modproxy/modproxy/internal/upstream"
	"github.com/modproxy/modproxy/internal/upstream/proxyclient"
	"github.com/modproxy/modproxy/internal/upstream/upstreamtest"
)

// bigStore is a disk store and index of 100,000 objects: 25,000 module
// versions of .info, .mod, .zip and .zip.h1.
func bigStore(b *testing.B) (*storagefs.Store, *index.Index, string) {
	b.Helper()
	dir := b.TempDir()
	st, err := storagefs.New(filepath.Join(dir, "cache"))
	if err != nil {
		b.Fatal(err)
	}
	idx, _, err := index.Open(filepath.Join(dir, "index.db"), index.Options{QueueSize: 200_000})
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { idx.Close() })
	now := time.Now()
	ctx := context.Background()
	for m := range 2500 {
		for v := range 10 {
			base := fmt.Sprintf("example.com/m%04d/@v/v1.%d.0", m, v)
			at := now.Add(-time.Duration(m*10+v) * time.Minute)
			for _, ext := range []string{".info", ".mod", ".zip", ".zip.h1"} {
				data := []byte(base + ext)
				if ext == ".zip" {
					data = bytes.Repeat(data, 40)
				}
				info, err := st.Put(ctx, base+ext, bytes.NewReader(data))
				if err != nil {
					b.Fatal(err)
				}
				idx.Stored(base+ext, info.Size, at)
			}
		}
		if m%250 == 0 {
			idx.Flush()
		}
	}
	idx.Flush()
	return st, idx, dir
}

type noGate struct{}

func (noGate) TryLockVersion(string, string) (func(), bool) { return func() {}, true }

// BenchmarkGC100k plans (size cap: evict 10%) and runs GC on a store of
// 100,000 objects.
func BenchmarkGC100k(b *testing.B) {
	st, idx, dir := bigStore(b)
	total, n := idx.Totals()
	if n != 100_000 {
		b.Fatalf("%d objects", n)
	}
	pol := gc.Policy{MaxBytes: total * 9 / 10}
	b.Run("plan", func(b *testing.B) {
		for b.Loop() {
			plan, err := gc.MakePlan(idx, pol, time.Now())
			if err != nil || len(plan.Items) == 0 {
				b.Fatal(err)
			}
		}
	})
	b.Run("run", func(b *testing.B) {
		tr, _ := trash.New(filepath.Join(dir, "trash"), trash.Options{})
		al, _ := audit.Open(filepath.Join(dir, "audit.log"))
		defer al.Close()
		r := &gc.Runner{Store: st, Index: idx, Trash: tr, Gate: noGate{}, Audit: al}
		var evicted int
		for b.Loop() { // the first run evicts, later runs find nothing over the cap
			plan, _ := gc.MakePlan(idx, pol, time.Now())
			res, err := r.Run(context.Background(), plan, "bench", "bench")
			if err != nil {
				b.Fatal(err)
			}
			evicted += len(res.Evicted)
		}
		b.ReportMetric(float64(evicted), "versions-evicted")
	})
}

// BenchmarkHitIndex measures a cached .info hit through the proxy service
// with and without the metadata index recording the access.
func BenchmarkHitIndex(b *testing.B) {
	up := upstreamtest.New(b, []upstreamtest.Module{{Path: "example.com/a", Version: "v1.0.0", Files: map[string][]byte{"a.go": []byte("package a\n")}}}, upstreamtest.WithoutSumDB())
	for _, withIndex := range []bool{false, true} {
		name := "without-index"
		if withIndex {
			name = "with-index"
		}
		b.Run(name, func(b *testing.B) {
			dir := b.TempDir()
			st, _ := storagefs.New(dir)
			pc, _ := proxyclient.New(up.URL(), proxyclient.Options{})
			opts := proxy.Options{Store: st, Upstream: &upstream.Chain{Links: []upstream.Link{{Fetcher: pc}}}, TempDir: st.TempDir(), Policy: cachepolicy.Default()}
			if withIndex {
				idx, _, err := index.Open(filepath.Join(dir, "index.db"), index.Options{})
				if err != nil {
					b.Fatal(err)
				}
				defer idx.Close()
				opts.Index = idx
			}
			svc := proxy.New(opts)
			defer svc.Close()
			req, _ := artifact.Parse("example.com/a/@v/v1.0.0.info")
			ctx := context.Background()
			b.RunParallel(func(pb *testing.PB) {
				for pb.Next() {
					res, err := svc.Get(ctx, req)
					if err != nil {
						b.Fatal(err)
					}
					io.Copy(io.Discard, res.Object)
					res.Close()
				}
			})
		})
	}
}

func manyModules(n int) []upstreamtest.Module {
	var mods []upstreamtest.Module
	for i := range n {
		p := fmt.Sprintf("example.com/dep%03d", i)
		mods = append(mods, upstreamtest.Module{Path: p, Version: "v1.0.0", Files: map[string][]byte{
			"go.mod": []byte("module " + p + "\n"), "x.go": bytes.Repeat([]byte("package x\n// padding\n"), 200)}})
	}
	return mods
}

func fetchAll(b *testing.B, base string, mods []upstreamtest.Module) {
	var wg sync.WaitGroup
	sem := make(chan struct{}, 16)
	for _, m := range mods {
		for _, ext := range []string{".info", ".mod", ".zip"} {
			wg.Add(1)
			sem <- struct{}{}
			go func() {
				defer wg.Done()
				defer func() { <-sem }()
				resp, err := http.Get(base + "/" + m.Path + "/@v/v1.0.0" + ext)
				if err != nil {
					b.Error(err)
					return
				}
				io.Copy(io.Discard, resp.Body)
				resp.Body.Close()
				if resp.StatusCode != 200 {
					b.Errorf("%s%s: %d", m.Path, ext, resp.StatusCode)
				}
			}()
		}
	}
	wg.Wait()
}

func serve(b *testing.B, mutate func(*config.Config)) (string, *app.Server) {
	b.Helper()
	cfg := config.Default()
	cfg.CacheDir = b.TempDir()
	cfg.SumDB = []string{"off"}
	cfg.Verify.Private = []string{}
	cfg.Admin.Listen = ""
	cfg.Resilience.ProbeInterval = 0
	mutate(&cfg)
	srv, err := app.New(cfg, slog.New(slog.DiscardHandler), app.Info{Version: "bench"})
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { srv.Close() })
	h := httptest.NewServer(srv.Handler())
	b.Cleanup(h.Close)
	return h.URL, srv
}

// BenchmarkFailover measures a cold fetch of 300 artifacts (100 module
// versions) with the primary upstream healthy, dead (connection refused)
// and hanging, with the circuit breaker (3 failures) and without it (a
// threshold never reached). The list is "primary|secondary".
// header_timeout is 1s here (30s by default) to keep the hanging case short.
func BenchmarkFailover(b *testing.B) {
	mods := manyModules(100)
	for _, tc := range []struct {
		name    string
		primary string // healthy, dead, hang
		breaker bool
		warm    bool // open the breaker before timing (steady state of an outage)
	}{
		{"healthy", "healthy", true, false},
		{"dead/breaker", "dead", true, false}, {"dead/breaker-open", "dead", true, true}, {"dead/no-breaker", "dead", false, false},
		{"hang/breaker", "hang", true, false}, {"hang/breaker-open", "hang", true, true}, {"hang/no-breaker", "hang", false, false},
	} {
		b.Run(tc.name, func(b *testing.B) {
			for b.Loop() {
				b.StopTimer()
				primary := upstreamtest.New(b, mods, upstreamtest.WithoutSumDB())
				secondary := upstreamtest.New(b, mods, upstreamtest.WithoutSumDB())
				switch tc.primary {
				case "dead":
					primary.Stop()
				case "hang":
					primary.SetFault("ALL", upstreamtest.Fault{Kind: upstreamtest.Hang})
				}
				url, _ := serve(b, func(c *config.Config) {
					c.Upstream = primary.URL() + "|" + secondary.URL()
					c.Resilience.HeaderTimeout = config.Duration(time.Second)
					c.Resilience.MaxAttempts = 1
					c.Resilience.BreakerOpen = config.Duration(time.Hour)
					if !tc.breaker {
						c.Resilience.BreakerFailures = 1 << 30
					}
				})
				if tc.warm {
					for i := range 3 {
						if resp, err := http.Get(fmt.Sprintf("%s/example.com/warmup%d/@v/list", url, i)); err == nil {
							resp.Body.Close()
						}
					}
				}
				b.StartTimer()
				fetchAll(b, url, mods)
			}
		})
	}
}

// BenchmarkStoreHit compares a cached 3 MiB-class zip and a .mod hit on
// the disk store and on S3 (versitygw on loopback), through the handler.
func BenchmarkStoreHit(b *testing.B) {
	mods := manyModules(1)
	up := upstreamtest.New(b, mods, upstreamtest.WithoutSumDB())
	s3srv := s3test.Start(b)
	bucket := s3srv.NewBucket(b)
	for _, kind := range []string{"disk", "s3"} {
		url, _ := serve(b, func(c *config.Config) {
			c.Upstream = up.URL()
			if kind == "s3" {
				c.Storage.Type = "s3"
				c.Storage.S3 = config.S3{Endpoint: s3srv.Endpoint, Region: "us-east-1", Bucket: bucket, Prefix: "bench/",
					AccessKey: s3test.AccessKey, SecretKey: s3test.SecretKey, PathStyle: true}
			}
		})
		for _, ext := range []string{".mod", ".zip"} {
			p := url + "/" + mods[0].Path + "/@v/v1.0.0" + ext
			http.Get(p) // fill
			b.Run(kind+"/"+ext[1:], func(b *testing.B) {
				b.RunParallel(func(pb *testing.PB) {
					for pb.Next() {
						resp, err := http.Get(p)
						if err != nil {
							b.Fatal(err)
						}
						io.Copy(io.Discard, resp.Body)
						resp.Body.Close()
					}
				})
			})
		}
	}
}

// BenchmarkClusterColdFill: a cold fetch of 300 artifacts fired at two
// replicas at once (every artifact requested from both), on one bucket
// and one Redis; reports the upstream requests per artifact.
func BenchmarkClusterColdFill(b *testing.B) {
	mods := manyModules(100)
	s3srv := s3test.Start(b)
	redis := coordtest.Start(b)
	for b.Loop() {
		b.StopTimer()
		up := upstreamtest.New(b, mods, upstreamtest.WithoutSumDB())
		bucket := s3srv.NewBucket(b)
		var urls []string
		for range 2 {
			u, _ := serve(b, func(c *config.Config) {
				c.Upstream = up.URL()
				c.Storage.Type = "s3"
				c.Storage.S3 = config.S3{Endpoint: s3srv.Endpoint, Region: "us-east-1", Bucket: bucket,
					AccessKey: s3test.AccessKey, SecretKey: s3test.SecretKey, PathStyle: true}
				c.Cluster.Redis = redis.Addr
			})
			urls = append(urls, u)
		}
		b.StartTimer()
		var wg sync.WaitGroup
		for _, u := range urls {
			wg.Go(func() { fetchAll(b, u, mods) })
		}
		wg.Wait()
		b.StopTimer()
		b.ReportMetric(float64(up.Total())/float64(3*len(mods)), "upstream-requests/artifact")
		b.StartTimer()
	}
}
