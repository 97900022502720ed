package app_test

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/modproxy/modproxy/internal/admin"
	"github.com/modproxy/modproxy/internal/app"
	"github.com/modproxy/modproxy/internal/cacheadmin"
	"github.com/modproxy/modproxy/internal/config"
	"github.com/modproxy/modproxy/internal/coord/coordtest"
	"github.com/modproxy/modproxy/internal/hosted"
	"github.com/modproxy/modproxy/internal/publish"
	s3store "github.com/modproxy/modproxy/internal/storage/s3"
	"github.com/modproxy/modproxy/internal/upstream/upstreamtest"
)

// hostedKeyFile writes a new signer key for the hosted log to a file.
func hostedKeyFile(t *testing.T) string {
	t.Helper()
	skey, _, err := hosted.GenerateKey()
	if err != nil {
		t.Fatal(err)
	}
	f := filepath.Join(t.TempDir(), "hosted.key")
	if err := os.WriteFile(f, []byte(skey+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	return f
}

// goModDownload runs the real go command's "go mod download -json MOD"
// through proxyURL with the hosted path private, and returns its answer.
func goModDownload(t *testing.T, proxyURL, mod string) (sum, goModSum string) {
	t.Helper()
	dir := t.TempDir()
	gocache, err := exec.Command("go", "env", "GOCACHE").Output()
	if err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command("go", "mod", "download", "-json", mod)
	cmd.Dir = dir
	cmd.Env = append(os.Environ(), "HOME="+dir, "GOPATH="+filepath.Join(dir, "gopath"), "GOMODCACHE="+filepath.Join(dir, "modcache"),
		"GOCACHE="+strings.TrimSpace(string(gocache)), "GOPROXY="+proxyURL, "GOFLAGS=-modcacherw", "GONOSUMDB=corp.example.com",
		"GOPRIVATE=", "GONOPROXY=", "GOTOOLCHAIN=local", "GOTELEMETRY=off", "GOENV=off", "GOWORK=off")
	out, err := cmd.Output()
	if err != nil {
		var stderr []byte
		if ee, ok := err.(*exec.ExitError); ok {
			stderr = ee.Stderr
		}
		t.Fatalf("go mod download %s: %v\n%s%s", mod, err, out, stderr)
	}
	var res struct{ Sum, GoModSum string }
	if err := json.Unmarshal(out, &res); err != nil {
		t.Fatalf("go mod download -json: %v\n%s", err, out)
	}
	return res.Sum, res.GoModSum
}

// TestClusterHostedModules: two replicas on one bucket and one Redis host
// modules together. A version published on one is served, listed and
// verified by the real go command through the other at once; the
// immutability rules hold across replicas (same bytes 200, other bytes
// 409, even for two publishes of one version at the same moment);
// concurrent publishes on both all land in one consistent log; a purge on
// one blocks re-publishing on the other; and modproxy verify on a node
// that never served checks the bucket's objects against the shared log.
func TestClusterHostedModules(t *testing.T) {
	redis := coordtest.Start(t)
	up := upstreamtest.New(t, nil, upstreamtest.WithoutSumDB())
	s3 := sharedS3(t)
	keyFile := hostedKeyFile(t)
	withHosted := func(c *config.Config) {
		hostedConfig(up)(c)
		c.HostedLog.KeyFile = keyFile
	}
	hs := replicas(t, 2, s3, up.URL(), redis.Addr, withHosted)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	// Replica 1 is not told of the first publish (its background work,
	// which listens, starts later): it must read the log when asked.
	hs[0].srv.RunBackground(ctx)
	dir := moduleDir(t, "corp.example.com/lib", "const X = 1")
	res, err := hs[0].publish(t, dir, "v1.0.0", adminToken)
	if err != nil || !res.Created {
		t.Fatalf("publish on replica 0: %+v %v", res, err)
	}
	// Replica 1, without waiting: the go command downloads and verifies it.
	if code, body, _ := hs[1].get(t, "/corp.example.com/lib/@v/list"); code != 200 || body != "v1.0.0\n" {
		t.Fatalf("list on replica 1: %d %q", code, body)
	}
	sum, modSum := goModDownload(t, hs[1].http.URL, "corp.example.com/lib@v1.0.0")
	if sum != res.H1 || modSum != res.GoModH1 {
		t.Fatalf("go mod download through replica 1: %s %s, published %s %s", sum, modSum, res.H1, res.GoModH1)
	}
	hs[1].srv.RunBackground(ctx)
	again, err := hs[1].publish(t, dir, "v1.0.0", adminToken)
	if err != nil || again.Created || again.Status != http.StatusOK || again.LogIndex != res.LogIndex {
		t.Fatalf("same bytes on replica 1: %+v %v", again, err)
	}
	_, err = hs[1].publish(t, moduleDir(t, "corp.example.com/lib", "const X = 2"), "v1.0.0", adminToken)
	wantStatus(t, err, http.StatusConflict)

	// Concurrent publishes of eight versions, four on each replica, and of
	// one version with two contents, one on each.
	var wg sync.WaitGroup
	errs := make(chan error, 8)
	for i := range 8 {
		wg.Go(func() {
			if r, err := hs[i%2].publish(t, dir, fmt.Sprintf("v1.1.%d", i), adminToken); err != nil || !r.Created {
				errs <- fmt.Errorf("v1.1.%d on replica %d: %+v %v", i, i%2, r, err)
			}
		})
	}
	var racers [2]error
	for i := range 2 {
		wg.Go(func() {
			_, racers[i] = hs[i].publish(t, moduleDir(t, "corp.example.com/lib", fmt.Sprintf("const Y = %d", i)), "v1.2.0", adminToken)
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
	won := 0
	for i, err := range racers {
		var se *publish.ServerError
		switch {
		case err == nil:
			won++
		case errors.As(err, &se) && se.Status == http.StatusConflict:
		default:
			t.Errorf("racing publish of v1.2.0 on replica %d: %v", i, err)
		}
	}
	if won != 1 {
		t.Fatalf("%d of two publishes of v1.2.0 with different bytes succeeded, want 1", won)
	}
	wantList := "v1.0.0\n"
	for i := range 8 {
		wantList += fmt.Sprintf("v1.1.%d\n", i)
	}
	wantList += "v1.2.0\n"
	var heads [2]string
	for i, h := range hs {
		if code, body, _ := h.get(t, "/corp.example.com/lib/@v/list"); code != 200 || body != wantList {
			t.Errorf("list on replica %d: %d %q", i, code, body)
		}
		code, body, _ := h.get(t, "/sumdb-hosted/latest")
		if code != 200 || !strings.Contains(body, "\n10\n") {
			t.Errorf("signed head on replica %d: %d %q", i, code, body)
		}
		heads[i] = body
	}
	if heads[0] != heads[1] {
		t.Errorf("the replicas serve different heads:\n%s\n%s", heads[0], heads[1])
	}

	// A purge on replica 0 blocks re-publishing on replica 1.
	if _, err := hs[0].srv.Admin().Purge(ctx, "test", admin.PurgeRequest{Module: "corp.example.com/lib", Versions: "v1.0.0", Reason: "leaked a key"}); err != nil {
		t.Fatal(err)
	}
	if code, body, _ := hs[1].get(t, "/corp.example.com/lib/@v/list"); code != 200 || strings.Contains(body, "v1.0.0\n") {
		t.Errorf("list on replica 1 after a purge on replica 0: %d %q", code, body)
	}
	_, err = hs[1].publish(t, dir, "v1.0.0", adminToken)
	wantStatus(t, err, http.StatusGone)

	// modproxy verify on another node: the bucket agrees with the log; then
	// a hosted zip changed in the bucket is found through the log.
	cfg := config.Default()
	cfg.CacheDir = t.TempDir()
	cfg.SumDB = []string{"off"}
	withHosted(&cfg)
	cfg.Storage.Type, cfg.Storage.S3 = "s3", s3
	if err := cfg.Validate(); err != nil {
		t.Fatal(err)
	}
	rep, err := app.Scrub(ctx, cfg, false, nil)
	if err != nil || len(rep.Problems) != 0 {
		t.Fatalf("verify of the bucket: %v %+v", err, rep.Problems)
	}
	st, err := s3store.New(ctx, s3store.Options{Endpoint: s3.Endpoint, Region: s3.Region, Bucket: s3.Bucket, Prefix: s3.Prefix,
		AccessKey: s3.AccessKey, SecretKey: s3.SecretKey, PathStyle: true, Timeout: 10 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	other, err := hs[0].publish(t, moduleDir(t, "corp.example.com/other", "const Z = 1"), "v1.0.0", adminToken)
	if err != nil {
		t.Fatal(err)
	}
	zipKey := "corp.example.com/other/@v/v1.0.0.zip"
	o, err := st.Open(ctx, "corp.example.com/lib/@v/v1.1.3.zip")
	if err != nil {
		t.Fatal(err)
	}
	var swapped bytes.Buffer
	_, err = swapped.ReadFrom(o)
	o.Close()
	if err != nil {
		t.Fatal(err)
	}
	if _, err := st.Put(ctx, zipKey, &swapped); err != nil {
		t.Fatal(err)
	}
	rep, err = app.Scrub(ctx, cfg, false, nil)
	if err != nil {
		t.Fatal(err)
	}
	found := false
	for _, p := range rep.Problems {
		if p.Key == zipKey && p.Problem == "log-mismatch" && p.Log == other.H1 {
			found = true
		} else {
			t.Errorf("unexpected problem: %+v", p)
		}
	}
	if !found {
		t.Fatalf("verify did not find the changed hosted zip: %+v", rep.Problems)
	}

	// Redis down: a purge of a hosted version cannot take the cluster
	// lock, so it fails as unavailable and evicts nothing.
	redis.Stop()
	if _, err := hs[0].srv.Admin().Purge(ctx, "test", admin.PurgeRequest{Module: "corp.example.com/lib", Versions: "v1.1.0", Reason: "r"}); !errors.Is(err, cacheadmin.ErrUnavailable) {
		t.Fatalf("purge with Redis down: %v, want cacheadmin.ErrUnavailable", err)
	}
	if code, _, _ := hs[1].get(t, "/corp.example.com/lib/@v/v1.1.0.zip"); code != 200 {
		t.Fatalf("a purge that failed evicted the zip: %d", code)
	}
}
