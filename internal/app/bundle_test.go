package app_test

import (
	"bytes"
	"context"
	"log/slog"
	"net/http/httptest"
	"path/filepath"
	"regexp"
	"strconv"
	"testing"
	"time"

	"github.com/modproxy/modproxy/internal/app"
	"github.com/modproxy/modproxy/internal/config"
	"github.com/modproxy/modproxy/internal/upstream/upstreamtest"
)

// TestImportIndexes: objects an import admits are recorded in the
// metadata index when no server holds it (GC counts them); with a server
// running, the import succeeds and that server records them in its index.
func TestImportIndexes(t *testing.T) {
	up := upstreamtest.New(t, testMods())
	_, key := up.SumDB()
	var cfgA config.Config
	a := start(t, func(c *config.Config) {
		c.Upstream = up.URL()
		c.SumDB = []string{key}
		cfgA = *c
	})
	for _, ext := range []string{"info", "mod", "zip"} {
		if status, body, _ := a.get(t, "/example.com/a/@v/v1.0.0."+ext); status != 200 {
			t.Fatalf("warming %s: %d %s", ext, status, body)
		}
	}
	var buf bytes.Buffer
	ctx := context.Background()
	if _, err := app.Export(ctx, cfgA, app.ExportRequest{All: true}, &buf); err != nil {
		t.Fatal(err)
	}

	cfgB := config.Default()
	cfgB.CacheDir = t.TempDir()
	cfgB.Upstream = "off"
	cfgB.Offline = true
	cfgB.SumDB = []string{key}
	cfgB.Verify.Private = []string{}
	b, err := app.New(cfgB, slog.New(slog.DiscardHandler), app.Info{Version: "test"})
	if err != nil {
		t.Fatal(err)
	}
	// Running: the index is the server's, which records the imported
	// objects itself (GC and listings count them without a rebuild).
	bctx, stopB := context.WithCancel(ctx)
	defer stopB()
	b.RunBackground(bctx)
	rep, warning, err := app.Import(ctx, cfgB, bytes.NewReader(buf.Bytes()), false, nil)
	if err != nil || len(rep.Changes) == 0 || warning != "" {
		t.Fatalf("import beside a running server: %v, %d changes, warning %q", err, len(rep.Changes), warning)
	}
	readyRE := regexp.MustCompile(`metadata index: ready \((\d+) objects\)`)
	var objects int
	for deadline := time.Now().Add(30 * time.Second); time.Now().Before(deadline); time.Sleep(50 * time.Millisecond) {
		rec := httptest.NewRecorder()
		b.Handler().ServeHTTP(rec, httptest.NewRequest("GET", "/readyz", nil))
		if m := readyRE.FindStringSubmatch(rec.Body.String()); m != nil {
			if objects, _ = strconv.Atoi(m[1]); objects >= len(rep.Changes) {
				break
			}
		}
	}
	if objects < len(rep.Changes) {
		t.Errorf("the running server's index counts %d objects after an import of %d", objects, len(rep.Changes))
	}
	stopB()
	if err := b.Close(); err != nil {
		t.Fatal(err)
	}
	if sum, err := app.ReadIndexSummary(cfgB); err != nil || sum.Versions != 1 {
		t.Errorf("index after the server stopped: %+v, %v; want 1 version", sum, err)
	}
	if left, _ := filepath.Glob(filepath.Join(cfgB.CacheDir, "state", "index-pending", "*.keys")); len(left) != 0 {
		t.Errorf("pending lists left after they were recorded: %v", left)
	}
	// Stopped: a fresh cache's import is recorded in the index.
	cfgC := cfgB
	cfgC.CacheDir = t.TempDir()
	c, err := app.New(cfgC, slog.New(slog.DiscardHandler), app.Info{Version: "test"})
	if err != nil {
		t.Fatal(err)
	}
	if err := c.Close(); err != nil {
		t.Fatal(err)
	}
	if _, _, err := app.RebuildIndex(ctx, cfgC, slog.New(slog.DiscardHandler)); err != nil { // a complete index
		t.Fatal(err)
	}
	rep, warning, err = app.Import(ctx, cfgC, bytes.NewReader(buf.Bytes()), false, nil)
	if err != nil || warning != "" {
		t.Fatalf("import: %v, warning %q", err, warning)
	}
	sum, err := app.ReadIndexSummary(cfgC)
	if err != nil {
		t.Fatal(err)
	}
	if sum.Versions != 1 || sum.Objects < int64(len(rep.Changes)) {
		t.Errorf("index after import: %+v, want 1 version and at least %d objects", sum, len(rep.Changes))
	}
}
