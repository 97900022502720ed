package app_test

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"golang.org/x/mod/sumdb/note"

	"github.com/modproxy/modproxy/internal/admin"
	"github.com/modproxy/modproxy/internal/app"
	"github.com/modproxy/modproxy/internal/checksum"
	"github.com/modproxy/modproxy/internal/config"
	"github.com/modproxy/modproxy/internal/hosted"
	"github.com/modproxy/modproxy/internal/publish"
	"github.com/modproxy/modproxy/internal/upstream/upstreamtest"
)

const adminToken = "s3cret-admin-token"

func hostedConfig(up *upstreamtest.Server) func(*config.Config) {
	return func(c *config.Config) {
		c.Upstream = up.URL()
		c.Verify.Private = []string{"corp.example.com", "shadow.example.com"}
		c.Hosted = []config.Hosted{{Match: "corp.example.com/*,shadow.example.com"}}
		c.Admin.Token = adminToken
	}
}

// moduleDir writes a module's files into a new directory.
func moduleDir(t *testing.T, path, body string) string {
	t.Helper()
	dir := t.TempDir()
	for name, content := range map[string]string{"go.mod": "module " + path + "\n\ngo 1.22\n", "lib.go": "package lib\n\n" + body + "\n"} {
		if err := os.WriteFile(filepath.Join(dir, name), []byte(content), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	return dir
}

func (h *harness) publish(t *testing.T, dir, version, token string) (publish.Result, error) {
	t.Helper()
	return publish.Run(context.Background(), publish.Options{Proxy: h.http.URL, Token: token, Version: version, Dir: dir, NoVCS: true})
}

func wantStatus(t *testing.T, err error, status int) {
	t.Helper()
	var se *publish.ServerError
	if !errors.As(err, &se) || se.Status != status {
		t.Fatalf("err = %v, want the server's %d", err, status)
	}
}

func TestPublishServeImmutable(t *testing.T) {
	up := upstreamtest.New(t, []upstreamtest.Module{{Path: "shadow.example.com", Version: "v1.0.0",
		Files: map[string][]byte{"go.mod": []byte("module shadow.example.com\n"), "s.go": []byte("package s\n")}}}, upstreamtest.WithoutSumDB())
	h := start(t, hostedConfig(up))
	dir := moduleDir(t, "corp.example.com/lib", "const X = 1")
	res, err := h.publish(t, dir, "v1.0.0", adminToken)
	if err != nil {
		t.Fatal(err)
	}
	if !res.Created || res.Status != http.StatusCreated || !strings.HasPrefix(res.H1, "h1:") {
		t.Fatalf("publish: %+v", res)
	}
	if code, body, hdr := h.get(t, "/corp.example.com/lib/@v/v1.0.0.zip"); code != 200 || hdr.Get("X-Go-Checksum") != res.H1 || len(body) == 0 {
		t.Fatalf("zip: %d %q", code, hdr.Get("X-Go-Checksum"))
	}
	if code, body, _ := h.get(t, "/corp.example.com/lib/@v/list"); code != 200 || body != "v1.0.0\n" {
		t.Fatalf("list: %d %q", code, body)
	}
	// A second version is listed at once (the cached list is dropped).
	if _, err := h.publish(t, dir, "v1.1.0", adminToken); err != nil {
		t.Fatal(err)
	}
	if code, body, _ := h.get(t, "/corp.example.com/lib/@v/list"); code != 200 || body != "v1.0.0\nv1.1.0\n" {
		t.Fatalf("list after a second publish: %d %q", code, body)
	}
	if code, body, _ := h.get(t, "/corp.example.com/lib/@latest"); code != 200 || !strings.Contains(body, `"v1.1.0"`) {
		t.Fatalf("latest: %d %q", code, body)
	}
	again, err := h.publish(t, dir, "v1.0.0", adminToken)
	if err != nil || again.Created || again.Status != http.StatusOK || again.H1 != res.H1 {
		t.Fatalf("same bytes again: %+v %v", again, err)
	}
	changed := moduleDir(t, "corp.example.com/lib", "const X = 2")
	_, err = h.publish(t, changed, "v1.0.0", adminToken)
	wantStatus(t, err, http.StatusConflict)
	// Hosted paths never reach the upstream.
	if code, _, _ := h.get(t, "/corp.example.com/lib/@v/v9.9.9.info"); code != 404 {
		t.Fatalf("unpublished version: %d", code)
	}
	if n := up.Requests("corp.example.com/lib/@v/v9.9.9.info"); n != 0 {
		t.Fatalf("the upstream was asked %d times for a hosted path", n)
	}
	// A version an upstream serves is not shadowed.
	_, err = h.publish(t, moduleDir(t, "shadow.example.com", "const S = 1"), "v1.0.0", adminToken)
	wantStatus(t, err, http.StatusConflict)
	// Outside the hosted patterns.
	_, err = h.publish(t, moduleDir(t, "other.example.com/lib", ""), "v1.0.0", adminToken)
	wantStatus(t, err, http.StatusForbidden)
	// Without the admin token (authentication is off).
	_, err = h.publish(t, dir, "v1.2.0", "wrong")
	wantStatus(t, err, http.StatusUnauthorized)
	_, err = h.publish(t, dir, "v1.2.0", "")
	wantStatus(t, err, http.StatusUnauthorized)
}

func TestPublishOffWithoutAdminToken(t *testing.T) {
	up := upstreamtest.New(t, nil, upstreamtest.WithoutSumDB())
	h := start(t, func(c *config.Config) { hostedConfig(up)(c); c.Admin.Token = "" })
	_, err := h.publish(t, moduleDir(t, "corp.example.com/lib", ""), "v1.0.0", "")
	wantStatus(t, err, http.StatusForbidden)
}

func TestHostedMustBePrivate(t *testing.T) {
	cfg := config.Default()
	cfg.CacheDir = t.TempDir()
	cfg.Upstream = "off"
	cfg.Verify.Private = []string{"corp.example.com/internal"}
	cfg.Hosted = []config.Hosted{{Match: "corp.example.com"}}
	var ce *config.Error
	if err := app.Validate(cfg); !errors.As(err, &ce) || ce.Key != "hosted[0].match" {
		t.Fatalf("a hosted pattern outside verify.private: %v", err)
	}
	cfg.Verify.Private = []string{"*.example.com"}
	if err := app.Validate(cfg); err != nil {
		t.Fatalf("covered by a glob: %v", err)
	}
}

func TestPurgeOfHostedVersionBlocksRepublish(t *testing.T) {
	up := upstreamtest.New(t, nil, upstreamtest.WithoutSumDB())
	h := start(t, hostedConfig(up))
	dir := moduleDir(t, "corp.example.com/lib", "const X = 1")
	if _, err := h.publish(t, dir, "v1.0.0", adminToken); err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	if _, err := h.srv.Admin().Purge(ctx, "test", admin.PurgeRequest{Module: "corp.example.com/lib", Versions: "v1.0.0", Reason: "leaked a key"}); err != nil {
		t.Fatal(err)
	}
	if code, _, _ := h.get(t, "/corp.example.com/lib/@v/v1.0.0.zip"); code != 404 {
		t.Fatalf("purged zip: %d", code)
	}
	if code, body, _ := h.get(t, "/corp.example.com/lib/@v/list"); code != 200 || body != "" {
		t.Fatalf("list after purge: %d %q", code, body)
	}
	_, err := h.publish(t, dir, "v1.0.0", adminToken)
	wantStatus(t, err, http.StatusGone)
	if _, err := h.srv.Admin().Purge(ctx, "test", admin.PurgeRequest{Module: "corp.example.com/lib", Versions: "v1.0.0", Reason: "rotate", AllowRepublish: true}); err != nil {
		t.Fatal(err)
	}
	// A purge that allows re-publishing lifts the block: the same bytes
	// bring the version back.
	res, err := h.publish(t, dir, "v1.0.0", adminToken)
	if err != nil || res.Status != http.StatusOK {
		t.Fatalf("re-publish allowed by a purge: %+v %v", res, err)
	}
	if code, _, hdr := h.get(t, "/corp.example.com/lib/@v/v1.0.0.zip"); code != 200 || hdr.Get("X-Go-Checksum") != res.H1 {
		t.Fatalf("zip after re-publish: %d", code)
	}
}

// TestRepublishOtherBytesServesNewHash: a version purged with re-publish
// allowed and published again with other bytes is served with the new
// bytes' hash headers at once (the hash remembered for the old object is
// not reused for the new one).
func TestRepublishOtherBytesServesNewHash(t *testing.T) {
	up := upstreamtest.New(t, nil, upstreamtest.WithoutSumDB())
	h := start(t, hostedConfig(up))
	first, err := h.publish(t, moduleDir(t, "corp.example.com/lib", "const X = 1"), "v1.0.0", adminToken)
	if err != nil {
		t.Fatal(err)
	}
	if code, _, hdr := h.get(t, "/corp.example.com/lib/@v/v1.0.0.zip"); code != 200 || hdr.Get("X-Go-Checksum") != first.H1 {
		t.Fatalf("zip: %d, X-Go-Checksum %q, want %s", code, hdr.Get("X-Go-Checksum"), first.H1)
	}
	ctx := context.Background()
	if _, err := h.srv.Admin().Purge(ctx, "test", admin.PurgeRequest{Module: "corp.example.com/lib", Versions: "v1.0.0", Reason: "rebuilt", AllowRepublish: true}); err != nil {
		t.Fatal(err)
	}
	second, err := h.publish(t, moduleDir(t, "corp.example.com/lib", "const X = 2"), "v1.0.0", adminToken)
	if err != nil {
		t.Fatalf("re-publish with other bytes after an allowing purge: %v", err)
	}
	if second.H1 == first.H1 {
		t.Fatalf("the two publishes hash the same (%s)", first.H1)
	}
	code, body, hdr := h.get(t, "/corp.example.com/lib/@v/v1.0.0.zip")
	if code != 200 || hdr.Get("X-Go-Checksum") != second.H1 || hdr.Get("ETag") != `"`+second.H1+`"` {
		t.Errorf("zip after re-publish: %d, X-Go-Checksum %q, ETag %q; want %s", code, hdr.Get("X-Go-Checksum"), hdr.Get("ETag"), second.H1)
	}
	if got, err := checksum.HashZip(strings.NewReader(body), int64(len(body))); err != nil || got != second.H1 {
		t.Errorf("zip after re-publish hashes to %s (%v), want the new bytes' %s", got, err, second.H1)
	}
}

// TestHostedLogKeyConfig: hosted modules on S3 need hosted_log.key_file;
// a key file that is not a signer key is refused at start without its
// content in the error; on a disk store a configured key signs the log
// (its verifier checks the served head, across a restart).
func TestHostedLogKeyConfig(t *testing.T) {
	cfg := config.Default()
	cfg.CacheDir = t.TempDir()
	cfg.Upstream = "off"
	cfg.Verify.Private = []string{"corp.example.com"}
	cfg.Hosted = []config.Hosted{{Match: "corp.example.com/*"}}
	cfg.Storage.Type = "s3"
	cfg.Storage.S3 = config.S3{Endpoint: "127.0.0.1:1", Bucket: "b"}
	var ce *config.Error
	if err := app.Validate(cfg); !errors.As(err, &ce) || ce.Key != "hosted_log.key_file" {
		t.Fatalf("hosted on s3 without a key: %v", err)
	}

	up := upstreamtest.New(t, nil, upstreamtest.WithoutSumDB())
	bad := filepath.Join(t.TempDir(), "bad.key")
	if err := os.WriteFile(bad, []byte("PRIVATE+KEY+not-really-a-secret-xyzzy\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	cfg = config.Default()
	cfg.CacheDir = t.TempDir()
	cfg.SumDB = []string{"off"}
	hostedConfig(up)(&cfg)
	cfg.HostedLog.KeyFile = bad
	_, err := app.New(cfg, slog.New(slog.DiscardHandler), app.Info{Version: "test"})
	if !errors.As(err, &ce) || ce.Key != "hosted_log.key_file" || strings.Contains(err.Error(), "xyzzy") {
		t.Fatalf("a bad key file: %v", err)
	}

	keyFile := hostedKeyFile(t)
	b, err := os.ReadFile(keyFile)
	if err != nil {
		t.Fatal(err)
	}
	_, vkey, err := hosted.ParseKey(string(b))
	if err != nil {
		t.Fatal(err)
	}
	cacheDir := t.TempDir()
	withKey := func(c *config.Config) {
		hostedConfig(up)(c)
		c.CacheDir = cacheDir
		c.HostedLog.KeyFile = keyFile
	}
	verifier, err := note.NewVerifier(vkey)
	if err != nil {
		t.Fatal(err)
	}
	for i, version := range []string{"v1.0.0", "v1.1.0"} { // the second after a restart
		h := start(t, withKey)
		if _, err := h.publish(t, moduleDir(t, "corp.example.com/lib", "const X = 1"), version, adminToken); err != nil {
			t.Fatal(err)
		}
		code, body, _ := h.get(t, "/sumdb-hosted/latest")
		if code != 200 {
			t.Fatalf("latest: %d %q", code, body)
		}
		n, err := note.Open([]byte(body), note.VerifierList(verifier))
		if err != nil || !strings.Contains(n.Text, fmt.Sprintf("\n%d\n", i+1)) {
			t.Fatalf("head after %s: %v %q", version, err, body)
		}
		h.srv.Close()
		h.http.Close()
	}
	if _, err := os.Stat(filepath.Join(cacheDir, "state", "hosted", "key")); err == nil {
		t.Fatal("a key was generated although one is configured")
	}
}
