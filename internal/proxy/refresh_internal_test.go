package proxy

import (
	"errors"
	"fmt"
	"testing"
	"time"

	"github.com/modproxy/modproxy/internal/errclass"
)

// TestRefreshMarksBounded: beyond maxRefreshMarks the least recently
// refreshed module is forgotten first; refreshing a module again makes
// it the most recent; marks past the horizon go at the next refresh.
func TestRefreshMarksBounded(t *testing.T) {
	var r refreshes
	now := time.Unix(1e9, 0)
	for i := range maxRefreshMarks {
		r.add(fmt.Sprintf("example.com/m%d", i), now, time.Hour)
	}
	r.add("example.com/m0", now, time.Hour) // the most recent again
	r.add("example.com/new", now, time.Hour)
	if n := r.len(); n != maxRefreshMarks {
		t.Fatalf("%d marks, want %d", n, maxRefreshMarks)
	}
	for mod, want := range map[string]bool{"example.com/m0": true, "example.com/m1": false, "example.com/m2": true, "example.com/new": true} {
		if _, ok := r.m[mod]; ok != want {
			t.Errorf("mark of %s kept: %v, want %v", mod, ok, want)
		}
	}
	r.add("example.com/later", now.Add(2*time.Hour), time.Hour)
	if n := r.len(); n != 1 {
		t.Errorf("%d marks after the horizon, want 1", n)
	}
}

// TestNegCacheDelModule: forgetting a module's remembered answers
// forgets its keys only (not another module's, a nested module's or
// the checksum database's), and the index follows expiries, deletions
// and replacements.
func TestNegCacheDelModule(t *testing.T) {
	c := negCache{m: map[string]negEntry{}}
	now := time.Unix(1e9, 0)
	until := now.Add(time.Minute)
	c.put("example.com/m/@v/v1.1.0.info", "example.com/m", "gone", errclass.NotExist, until)
	c.put("mutable/example.com/m/@latest", "example.com/m", "gone", errclass.NotExist, until)
	c.put("example.com/m/sub/@v/list", "example.com/m/sub", "gone", errclass.NotExist, until)
	c.put("sumdb/sum.example.com/lookup/example.com/m@v1.1.0", "", "gone", errclass.NotExist, until)
	c.put("example.com/old/@v/list", "example.com/old", "gone", errclass.NotExist, now)
	c.delModule("example.com/m")
	for key, want := range map[string]bool{
		"example.com/m/@v/v1.1.0.info":                      false,
		"mutable/example.com/m/@latest":                     false,
		"example.com/m/sub/@v/list":                         true,
		"sumdb/sum.example.com/lookup/example.com/m@v1.1.0": true,
	} {
		var nf *NotFoundError
		if err := c.get(key, now); errors.As(err, &nf) != want {
			t.Errorf("%s remembered: %v, want %v", key, err, want)
		}
	}
	if err := c.get("example.com/old/@v/list", now); err != nil {
		t.Errorf("expired answer %v", err)
	}
	c.put("example.com/m/sub/@v/list", "example.com/m/sub", "gone again", errclass.NotExist, until)
	c.del("example.com/m/sub/@v/list")
	if len(c.byMod) != 0 {
		t.Errorf("index left %v", c.byMod)
	}
}
