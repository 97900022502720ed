package vulndb_test

import (
	"bytes"
	"context"
	"io"
	"sync"
	"testing"
	"testing/synctest"
	"time"

	"github.com/modproxy/modproxy/internal/background"
	"github.com/modproxy/modproxy/internal/upstream"
	"github.com/modproxy/modproxy/internal/vulndb"
	"github.com/modproxy/modproxy/internal/vulndb/vulndbtest"
)

// memSource is an in-memory upstream.Fetcher serving a database's files.
type memSource struct {
	mu    sync.Mutex
	files vulndbtest.Files
	down  bool
}

func (m *memSource) set(f vulndbtest.Files, down bool) {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.files, m.down = f, down
}

func (m *memSource) Fetch(_ context.Context, path string) (*upstream.Response, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	b, ok := m.files[path]
	if m.down {
		return nil, &upstream.Error{Upstream: "mem", Path: path, Status: 503}
	}
	if !ok {
		return nil, &upstream.Error{Upstream: "mem", Path: path, Status: 404}
	}
	return &upstream.Response{Body: io.NopCloser(bytes.NewReader(b)), Size: int64(len(b))}, nil
}

// TestRun: the first refresh happens at start, the next after the
// interval; a failing one keeps the data and counts; the age grows until
// a refresh succeeds.
func TestRun(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		src := &memSource{files: vulndbtest.Build(t, entryA(t0))}
		db := vulndb.New(vulndb.Options{Store: newStore(t), Source: src, SourceName: "mem", Refresh: time.Hour})
		time.Sleep(time.Minute)
		if age := db.Age(); age != time.Minute {
			t.Fatalf("Age without a database = %v, want the time since New", age)
		}
		g := background.New(nil)
		defer g.Close()
		db.Run(context.Background(), g)
		synctest.Wait()
		gen1 := db.Status().Generation
		if gen1 == "" {
			t.Fatal("no generation after the start-up refresh")
		}
		src.set(vulndbtest.Build(t, entryA(t0), entryB(t0.Add(time.Hour))), true)
		time.Sleep(time.Hour)
		synctest.Wait()
		if db.Failures() != 1 || db.Status().Generation != gen1 {
			t.Fatalf("after a failed refresh: failures %d, generation %s (want 1, %s)", db.Failures(), db.Status().Generation, gen1)
		}
		if age := db.Age(); age != time.Hour {
			t.Errorf("age %v after a failed refresh, want 1h", age)
		}
		src.set(vulndbtest.Build(t, entryA(t0), entryB(t0.Add(time.Hour))), false)
		time.Sleep(time.Hour)
		synctest.Wait()
		if db.Status().Generation == gen1 {
			t.Error("the refresh after recovery did not switch generations")
		}
		if age := db.Age(); age != 0 {
			t.Errorf("age %v after a successful refresh, want 0", age)
		}
	})
}
