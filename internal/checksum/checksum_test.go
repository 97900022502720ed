package checksum

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"

	"golang.org/x/mod/sumdb"

	"github.com/modproxy/modproxy/internal/upstream/upstreamtest"
)

func TestHashGoModMatchesGoSum(t *testing.T) {
	up := upstreamtest.New(t, []upstreamtest.Module{{Path: "example.com/a", Version: "v1.0.0", Files: map[string][]byte{"go.mod": []byte("module example.com/a\n\ngo 1.21\n"), "a.go": []byte("package a\n")}}}, upstreamtest.WithoutSumDB())
	h, err := HashGoMod(up.ModBytes("example.com/a", "v1.0.0"))
	if err != nil {
		t.Fatal(err)
	}
	if want := "example.com/a v1.0.0/go.mod " + h + "\n"; !strings.Contains(up.GoSum("example.com/a", "v1.0.0"), want) {
		t.Errorf("go.sum %q lacks %q", up.GoSum("example.com/a", "v1.0.0"), want)
	}
}

func TestWriteConfigCompareAndSwap(t *testing.T) {
	dir := t.TempDir()
	v := &Verifier{name: "sum.test.example"}
	o := &ops{v: v, state: dir}
	if err := os.MkdirAll(filepath.Join(dir, "sum.test.example"), 0o755); err != nil {
		t.Fatal(err)
	}
	if b, err := o.ReadConfig("sum.test.example/latest"); err != nil || len(b) != 0 {
		t.Fatalf("initial ReadConfig = %q, %v", b, err)
	}
	if err := o.WriteConfig("sum.test.example/latest", nil, []byte("tree 1")); err != nil {
		t.Fatal(err)
	}
	if err := o.WriteConfig("sum.test.example/latest", []byte("stale"), []byte("tree 2")); !errors.Is(err, sumdb.ErrWriteConflict) {
		t.Fatalf("WriteConfig with wrong old = %v, want ErrWriteConflict", err)
	}
	// Concurrent writers from the same old: exactly one wins.
	var wg sync.WaitGroup
	var wins, conflicts int
	var mu sync.Mutex
	for i := range 20 {
		wg.Go(func() {
			err := o.WriteConfig("sum.test.example/latest", []byte("tree 1"), []byte("tree 2 by "+string(rune('a'+i))))
			mu.Lock()
			defer mu.Unlock()
			switch {
			case err == nil:
				wins++
			case errors.Is(err, sumdb.ErrWriteConflict):
				conflicts++
			default:
				t.Error(err)
			}
		})
	}
	wg.Wait()
	if wins != 1 || conflicts != 19 {
		t.Errorf("wins %d conflicts %d, want 1 and 19", wins, conflicts)
	}
	if _, err := o.ReadConfig("other.example/latest"); err == nil {
		t.Error("ReadConfig of another database's file succeeded")
	}
}

func TestVerify(t *testing.T) {
	up := upstreamtest.New(t, []upstreamtest.Module{{Path: "example.com/a", Version: "v1.0.0", Files: map[string][]byte{"a.go": []byte("package a\n")}}})
	_, key := up.SumDB()
	remote := func(ctx context.Context, path string) ([]byte, error) {
		name, _ := up.SumDB()
		return httpGet(ctx, up.URL()+"/sumdb/"+name+path)
	}
	v, err := New(Options{Key: key, Remote: remote, StateDir: t.TempDir(), Private: "corp.example.com"})
	if err != nil {
		t.Fatal(err)
	}
	lines := strings.Fields(up.GoSum("example.com/a", "v1.0.0"))
	zipH1, modH1 := lines[2], lines[5]
	ctx := context.Background()
	if err := v.Verify(ctx, "example.com/a", "v1.0.0", false, zipH1); err != nil {
		t.Errorf("honest zip: %v", err)
	}
	if err := v.Verify(ctx, "example.com/a", "v1.0.0", true, modH1); err != nil {
		t.Errorf("honest go.mod: %v", err)
	}
	var me *MismatchError
	if err := v.Verify(ctx, "example.com/a", "v1.0.0", false, modH1); !errors.As(err, &me) || me.Want != zipH1 || me.Got != modH1 {
		t.Errorf("wrong hash: %v", err)
	}
	var le *LookupError
	if err := v.Verify(ctx, "example.com/nope", "v1.0.0", false, zipH1); !errors.As(err, &le) || !le.NotFound {
		t.Errorf("unknown version: %v", err)
	}
	before := up.Total()
	if err := v.Verify(ctx, "corp.example.com/x", "v1.0.0", false, zipH1); !errors.Is(err, ErrPrivate) {
		t.Errorf("private: %v", err)
	}
	if up.Total() != before {
		t.Error("a private path was looked up")
	}
}
