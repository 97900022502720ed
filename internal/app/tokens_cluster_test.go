package app_test

import (
	"context"
	"log/slog"
	"net/http"
	"testing"
	"time"

	"github.com/modproxy/modproxy/internal/access"
	"github.com/modproxy/modproxy/internal/app"
	"github.com/modproxy/modproxy/internal/config"
	"github.com/modproxy/modproxy/internal/storage/s3/s3test"
	"github.com/modproxy/modproxy/internal/upstream/upstreamtest"
)

// TestClusterSharesTokens: two replicas on one bucket (no Redis) share the
// token document: a token created with the token commands' own client is
// accepted by both, and once revoked refused by both, within the
// watcher's bound (access.DefaultInterval; the issue allows 10 s, the
// test waits up to 15 s).
func TestClusterSharesTokens(t *testing.T) {
	s3srv := s3test.Start(t)
	bucket := s3srv.NewBucket(t)
	up := upstreamtest.New(t, testMods(), upstreamtest.WithoutSumDB())
	var cfg config.Config
	var hs []*harness
	for range 2 {
		hs = append(hs, start(t, func(c *config.Config) {
			c.Upstream = up.URL()
			c.Storage.Type = "s3"
			c.Storage.S3 = config.S3{Endpoint: s3srv.Endpoint, Region: "us-east-1", Bucket: bucket, Prefix: "mp/",
				AccessKey: s3test.AccessKey, SecretKey: s3test.SecretKey, Secure: false, PathStyle: true}
			c.Auth.Mode = "required"
			cfg = *c
		}))
	}
	// As "modproxy token create" does: its own client, another cache dir.
	cfg.CacheDir = t.TempDir()
	ctx := context.Background()
	svc, err := app.OpenAccess(ctx, cfg, slog.New(slog.DiscardHandler))
	if err != nil {
		t.Fatal(err)
	}
	secret, _, err := svc.Create(ctx, "ci", access.Grant{Scopes: []access.Scope{access.ScopeRead}}, time.Time{})
	if err != nil {
		t.Fatal(err)
	}
	const path = "/example.com/a/@v/list"
	waitFor := func(what string, want int) {
		t.Helper()
		for i, h := range hs {
			deadline := time.Now().Add(15 * time.Second)
			for {
				status, _, _ := h.get(t, path, "Authorization", "Bearer "+secret)
				if status == want {
					break
				}
				if time.Now().After(deadline) {
					t.Fatalf("replica %d: %s: status %d after 15 s, want %d", i, what, status, want)
				}
				time.Sleep(100 * time.Millisecond)
			}
		}
	}
	waitFor("created token", http.StatusOK)
	if err := svc.Revoke(ctx, "ci"); err != nil {
		t.Fatal(err)
	}
	waitFor("revoked token", http.StatusUnauthorized)
}
