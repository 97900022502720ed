package app_test

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/modproxy/modproxy/internal/admin"
	"github.com/modproxy/modproxy/internal/config"
	"github.com/modproxy/modproxy/internal/coord/coordtest"
	"github.com/modproxy/modproxy/internal/storage/s3/s3test"
	"github.com/modproxy/modproxy/internal/upstream/upstreamtest"
)

// cluster starts n replicas on one bucket and one Redis.
func cluster(t *testing.T, n int, upURL, redisAddr string, more ...func(*config.Config)) []*harness {
	return replicas(t, n, sharedS3(t), upURL, redisAddr, more...)
}

// sharedS3 is the storage.s3 configuration of a new bucket of a real
// S3-compatible server.
func sharedS3(t *testing.T) config.S3 {
	s3srv := s3test.Start(t)
	return config.S3{Endpoint: s3srv.Endpoint, Region: "us-east-1", Bucket: s3srv.NewBucket(t), Prefix: "mp/",
		AccessKey: s3test.AccessKey, SecretKey: s3test.SecretKey, Secure: false, PathStyle: true}
}

// replicas starts n replicas on the bucket of s3 and one Redis.
func replicas(t *testing.T, n int, s3 config.S3, upURL, redisAddr string, more ...func(*config.Config)) []*harness {
	var hs []*harness
	for range n {
		hs = append(hs, start(t, func(c *config.Config) {
			c.Upstream = upURL
			c.Storage.Type = "s3"
			c.Storage.S3 = s3
			c.Cluster.Redis = redisAddr
			for _, f := range more {
				f(c)
			}
		}))
	}
	return hs
}

// TestClusterFillsOnce: 50 concurrent requests for one cold zip spread over
// three replicas cause exactly one upstream fetch, and every client gets
// the complete zip.
func TestClusterFillsOnce(t *testing.T) {
	redis := coordtest.Start(t)
	up := upstreamtest.New(t, testMods(), upstreamtest.WithoutSumDB())
	const zip = "example.com/a/@v/v1.0.0.zip"
	up.SetFault(zip, upstreamtest.Fault{Kind: upstreamtest.Delay, Delay: 300 * time.Millisecond})
	hs := cluster(t, 3, up.URL(), redis.Addr)
	want := up.ZipBytes("example.com/a", "v1.0.0")
	var wg sync.WaitGroup
	errs := make(chan error, 50)
	for i := range 50 {
		wg.Go(func() {
			resp, err := http.Get(hs[i%3].http.URL + "/" + zip)
			if err != nil {
				errs <- err
				return
			}
			b, err := io.ReadAll(resp.Body)
			resp.Body.Close()
			if err != nil || resp.StatusCode != 200 || !bytes.Equal(b, want) {
				errs <- fmt.Errorf("replica %d: %d, %d bytes, %v", i%3, resp.StatusCode, len(b), err)
			}
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
	if n := up.Requests(zip); n != 1 {
		t.Errorf("upstream saw %d fetches of the zip across 3 replicas, want 1", n)
	}
}

// TestClusterPurgeBlockPropagates: a purge with block on one replica is
// refused by all within a bound; Redis down: service continues;
// Redis back: coordination resumes.
func TestClusterPurgeAndRedisOutage(t *testing.T) {
	redis := coordtest.Start(t)
	up := upstreamtest.New(t, testMods(), upstreamtest.WithoutSumDB())
	// Warming off: the test counts the fills its own requests cause.
	hs := cluster(t, 2, up.URL(), redis.Addr, func(c *config.Config) { c.Warm.Zips = false })
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	for _, h := range hs {
		h.srv.RunBackground(ctx)
	}
	time.Sleep(300 * time.Millisecond) // subscriptions up
	for _, h := range hs {
		if status, _, _ := h.get(t, "/example.com/leaky/@v/v1.2.0.zip"); status != 200 {
			t.Fatalf("GET: %d", status)
		}
	}
	if _, err := hs[0].srv.Admin().Purge(ctx, "admin", admin.PurgeRequest{Module: "example.com/leaky", Versions: "v1.2.0", Reason: "secret", Block: true}); err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(5 * time.Second)
	for {
		status, body, _ := hs[1].get(t, "/example.com/leaky/@v/v1.2.0.zip")
		if status == 403 && strings.Contains(body, "secret") {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("the other replica still serves the purged version: %d %q", status, body)
		}
		time.Sleep(50 * time.Millisecond)
	}

	// Redis down: both replicas keep serving (cached and cold).
	redis.Stop()
	for i, h := range hs {
		if status, _, _ := h.get(t, "/example.com/leaky/@v/v1.3.0.zip"); status != 200 {
			t.Errorf("replica %d with Redis down, cached: %d", i, status)
		}
		if status, _, _ := h.get(t, fmt.Sprintf("/example.com/a/@v/v1.%d.0.mod", i)); status != 200 {
			t.Errorf("replica %d with Redis down, cold: %d", i, status)
		}
	}
	_, m, _ := hs[0].get(t, "/metrics")
	if !strings.Contains(m, "modproxy_coordination_fallbacks_total 2") { // two cold fetches on this replica
		t.Errorf("fallback not counted: %s", grep(m, "coordination"))
	}
	// Redis back: one fetch per cold artifact across replicas again.
	redis.Restart()
	time.Sleep(500 * time.Millisecond)
	up.ResetCounts()
	const zip = "example.com/a/@v/v1.1.0.zip"
	up.SetFault(zip, upstreamtest.Fault{Kind: upstreamtest.Delay, Delay: 200 * time.Millisecond})
	var wg sync.WaitGroup
	for i := range 10 {
		wg.Go(func() { hs[i%2].get(t, "/"+zip) })
	}
	wg.Wait()
	if n := up.Requests(zip); n != 1 {
		t.Errorf("after Redis came back: %d upstream fetches, want 1", n)
	}
}

func grep(s, sub string) string {
	var out []string
	for l := range strings.SplitSeq(s, "\n") {
		if strings.Contains(l, sub) {
			out = append(out, l)
		}
	}
	return strings.Join(out, "\n")
}

// TestGoModDownloadThroughLoadBalancedPair: the real go command downloads
// and verifies a project through a round-robin pair of replicas on one
// bucket and one Redis; every artifact is fetched upstream once.
func TestGoModDownloadThroughLoadBalancedPair(t *testing.T) {
	if _, err := exec.LookPath("go"); err != nil {
		t.Skip("no go command")
	}
	redis := coordtest.Start(t)
	mods := []upstreamtest.Module{
		{Path: "example.com/a", Version: "v1.0.0", Files: map[string][]byte{"go.mod": []byte("module example.com/a\n\ngo 1.21\n"), "a.go": []byte("package a\n\nconst Name = \"a\"\n")}},
		{Path: "example.com/b", Version: "v1.2.0", Files: map[string][]byte{"go.mod": []byte("module example.com/b\n\ngo 1.21\n\nrequire example.com/a v1.0.0\n"), "b.go": []byte("package b\n\nimport \"example.com/a\"\n\nconst Name = \"b\" + a.Name\n")}},
	}
	up := upstreamtest.New(t, mods)
	_, key := up.SumDB()
	s3srv := s3test.Start(t)
	bucket := s3srv.NewBucket(t)
	var replicas []*harness
	for range 2 {
		replicas = append(replicas, start(t, func(c *config.Config) {
			c.Upstream = up.URL()
			c.SumDB = []string{key}
			c.Storage.Type = "s3"
			c.Storage.S3 = config.S3{Endpoint: s3srv.Endpoint, Region: "us-east-1", Bucket: bucket, Prefix: "mp/",
				AccessKey: s3test.AccessKey, SecretKey: s3test.SecretKey, PathStyle: true}
			c.Cluster.Redis = redis.Addr
		}))
	}
	var next atomic.Int64
	lb := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		replicas[next.Add(1)%2].http.Config.Handler.ServeHTTP(w, r)
	}))
	defer lb.Close()

	dir := t.TempDir()
	proj := filepath.Join(dir, "proj")
	if err := os.MkdirAll(proj, 0o755); err != nil {
		t.Fatal(err)
	}
	for name, content := range map[string]string{
		"go.mod":  "module example.com/proj\n\ngo 1.21\n\nrequire example.com/b v1.2.0\n",
		"main.go": "package main\n\nimport (\n\t\"fmt\"\n\n\t\"example.com/b\"\n)\n\nfunc main() { fmt.Println(b.Name) }\n",
	} {
		if err := os.WriteFile(filepath.Join(proj, name), []byte(content), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	gocache, err := exec.Command("go", "env", "GOCACHE").Output()
	if err != nil {
		t.Fatal(err)
	}
	run := func(args ...string) string {
		cmd := exec.Command("go", args...)
		cmd.Dir = proj
		cmd.Env = append(os.Environ(), "HOME="+dir, "GOPATH="+filepath.Join(dir, "gopath"), "GOMODCACHE="+filepath.Join(dir, "modcache"),
			"GOCACHE="+strings.TrimSpace(string(gocache)), "GOPROXY="+lb.URL, "GOSUMDB="+key, "GOFLAGS=-mod=mod -modcacherw",
			"GONOSUMDB=", "GOPRIVATE=", "GONOPROXY=", "GOTOOLCHAIN=local", "GOTELEMETRY=off", "GOENV=off", "GOWORK=off")
		out, err := cmd.CombinedOutput()
		if err != nil {
			t.Fatalf("go %s: %v\n%s", strings.Join(args, " "), err, out)
		}
		return string(out)
	}
	run("mod", "download")
	if out := run("run", "."); !strings.HasSuffix(strings.TrimSpace(out), "ba") {
		t.Fatalf("go run printed %q", out)
	}
	for _, p := range up.Log() {
		if n := up.Requests(p); n > 1 {
			t.Errorf("%s fetched upstream %d times through the pair", p, n)
		}
	}
}

// TestS3RedirectMode: with storage.s3.redirect, zips are answered with a
// redirect to a pre-signed bucket URL that serves the right bytes.
func TestS3RedirectMode(t *testing.T) {
	up := upstreamtest.New(t, testMods(), upstreamtest.WithoutSumDB())
	s3srv := s3test.Start(t)
	bucket := s3srv.NewBucket(t)
	h := start(t, func(c *config.Config) {
		c.Upstream = up.URL()
		c.Storage.Type = "s3"
		c.Storage.S3 = config.S3{Endpoint: s3srv.Endpoint, Region: "us-east-1", Bucket: bucket, AccessKey: s3test.AccessKey,
			SecretKey: s3test.SecretKey, PathStyle: true, Redirect: true, RedirectTTL: config.Duration(time.Minute)}
	})
	noFollow := &http.Client{CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	for _, want := range []string{"miss", "hit"} {
		resp, err := noFollow.Get(h.http.URL + "/example.com/a/@v/v1.0.0.zip")
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		loc := resp.Header.Get("Location")
		if resp.StatusCode != http.StatusFound || !strings.Contains(loc, bucket) {
			t.Fatalf("%s: %d Location %q", want, resp.StatusCode, loc)
		}
		got, err := http.Get(loc)
		if err != nil {
			t.Fatal(err)
		}
		b, err := io.ReadAll(got.Body)
		got.Body.Close()
		if err != nil {
			t.Fatalf("%s: reading the pre-signed URL: %v", want, err)
		}
		if got.StatusCode != 200 || !bytes.Equal(b, up.ZipBytes("example.com/a", "v1.0.0")) {
			t.Fatalf("%s: pre-signed URL gave %d, %d bytes", want, got.StatusCode, len(b))
		}
	}
	if n := up.Requests("example.com/a/@v/v1.0.0.zip"); n != 1 {
		t.Errorf("upstream zip fetches = %d, want 1", n)
	}
	// A zip the upstream does not have is remembered as such (one fetch).
	for range 2 {
		if status, _, _ := h.get(t, "/example.com/a/@v/v1.9.0.zip"); status != 404 {
			t.Errorf("missing zip: %d", status)
		}
	}
	if n := up.Requests("example.com/a/@v/v1.9.0.zip"); n != 1 {
		t.Errorf("missing zip fetched %d times, want 1 (negative cache)", n)
	}
	// .mod and .info are still served directly.
	if status, body, _ := h.get(t, "/example.com/a/@v/v1.0.0.mod"); status != 200 || body != "module example.com/a\n" {
		t.Errorf("mod: %d %q", status, body)
	}
}

// TestClusterGCLeader: scheduled GC runs on one replica only, and its plan
// sees versions that another replica filled into the shared bucket.
func TestClusterGCLeader(t *testing.T) {
	redis := coordtest.Start(t)
	up := upstreamtest.New(t, testMods(), upstreamtest.WithoutSumDB())
	s3srv := s3test.Start(t)
	bucket := s3srv.NewBucket(t)
	var hs []*harness
	for range 2 {
		hs = append(hs, start(t, func(c *config.Config) {
			c.Upstream = up.URL()
			c.Storage.Type = "s3"
			c.Storage.S3 = config.S3{Endpoint: s3srv.Endpoint, Region: "us-east-1", Bucket: bucket, AccessKey: s3test.AccessKey,
				SecretKey: s3test.SecretKey, PathStyle: true}
			c.Cluster.Redis = redis.Addr
			c.GC.KeepNewest = 1
			c.GC.Interval = config.Duration(100 * time.Millisecond)
		}))
	}
	// Replica 1 fills both versions of example.com/a; replica 0 never sees them.
	for _, p := range []string{"/example.com/a/@v/v1.0.0.zip", "/example.com/a/@v/v1.1.0.zip"} {
		if status, _, _ := hs[1].get(t, p); status != 200 {
			t.Fatalf("GET %s: %d", p, status)
		}
	}
	plan, err := hs[0].srv.Admin().GCPlan(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	if len(plan.Items) != 1 || plan.Items[0].Version != "v1.0.0" {
		t.Fatalf("replica 0's plan %+v, want v1.0.0 (filled by replica 1) evicted", plan.Items)
	}
	ctx, cancel := context.WithCancel(context.Background())
	for _, h := range hs {
		h.srv.RunBackground(ctx)
	}
	time.Sleep(1500 * time.Millisecond)
	cancel()
	var runners int
	for i, h := range hs {
		_, m, _ := h.get(t, "/metrics")
		if v, ok := sample(m, `modproxy_gc_runs_total{mode="run",result="ok"}`); ok && v != "0" { // the series exists from start
			runners++
			t.Logf("replica %d ran GC", i)
		}
	}
	if runners != 1 {
		t.Errorf("%d replicas ran scheduled GC, want exactly one leader", runners)
	}
	if status, _, _ := hs[0].get(t, "/cached-only/example.com/a/@v/v1.0.0.zip"); status != 404 {
		t.Errorf("evicted version still in the bucket: %d", status)
	}
}
