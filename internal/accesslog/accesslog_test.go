package accesslog

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"strings"
	"sync"
	"testing"
	"time"
)

// slogLine is what slog's own handler writes for e: the record the access
// log used to make with Logger.LogAttrs, field by field.
func slogLine(t testing.TB, f Format, with []slog.Attr, group string, e Entry) string {
	t.Helper()
	var b bytes.Buffer
	var h slog.Handler = slog.NewTextHandler(&b, nil)
	if f == JSON {
		h = slog.NewJSONHandler(&b, &slog.HandlerOptions{ReplaceAttr: Seconds})
	}
	h = h.WithAttrs(with)
	if group != "" {
		h = h.WithGroup(group)
	}
	r := slog.NewRecord(e.Time, slog.LevelInfo, "request", 0)
	r.AddAttrs(
		slog.String("method", e.Method),
		slog.String("path", e.Path),
		slog.Int("status", e.Status),
		slog.Int64("bytes", e.Bytes),
		slog.Duration("duration", e.Duration),
	)
	if e.Cache != "" {
		r.AddAttrs(slog.String("cache", e.Cache))
	}
	r.AddAttrs(slog.String("remote", e.Remote))
	if err := h.Handle(context.Background(), r); err != nil {
		t.Fatal(err)
	}
	return b.String()
}

// ourLine is what Log writes for e through a Handler.
func ourLine(t testing.TB, f Format, with []slog.Attr, group string, e Entry) string {
	t.Helper()
	var b bytes.Buffer
	var h slog.Handler = NewHandler(&b, f, nil)
	h = h.WithAttrs(with)
	if group != "" {
		h = h.WithGroup(group)
	}
	Log(context.Background(), slog.New(h), &e)
	return b.String()
}

var formats = map[string]Format{"json": JSON, "text": Text}

func entries() []Entry {
	at := time.Date(2026, 3, 4, 5, 6, 7, 891_234_567, time.UTC)
	base := Entry{Time: at, Method: "GET", Path: "/example.com/a/@v/v1.0.0.info", Status: 200, Bytes: 48,
		Duration: 41_234 * time.Nanosecond, Cache: "hit", Remote: "127.0.0.1"}
	var es []Entry
	add := func(f func(e *Entry)) {
		e := base
		f(&e)
		es = append(es, e)
	}
	add(func(e *Entry) {})
	add(func(e *Entry) { e.Cache = "" })
	add(func(e *Entry) { e.Method, e.Status, e.Bytes, e.Cache = "HEAD", 404, 0, "negative" })
	add(func(e *Entry) {
		e.Time = time.Date(2026, 12, 31, 23, 59, 59, 999_999_999, time.FixedZone("x", 5*3600+1800))
	})
	add(func(e *Entry) { e.Time = time.Date(1999, 1, 1, 0, 0, 0, 0, time.FixedZone("y", -8*3600)) })
	add(func(e *Entry) { e.Time = at.Local() })
	add(func(e *Entry) { e.Remote = "::1" })
	add(func(e *Entry) { e.Remote = "2001:db8::1%eth0" })
	add(func(e *Entry) { e.Bytes, e.Duration = 3<<20, 2*time.Hour+3*time.Millisecond })
	add(func(e *Entry) { e.Duration = 0 })
	add(func(e *Entry) { e.Duration = 999 * time.Millisecond })
	add(func(e *Entry) { e.Status = 499 })
	add(func(e *Entry) { e.Path = "/github.com/!burnt!sushi/toml/@v/v1.3.2+incompatible.zip" })
	add(func(e *Entry) { e.Path = "/sumdb/sum.example/tile/8/0/x001/234.p/5" })
	// Strings slog escapes or quotes: the line goes through slog.
	add(func(e *Entry) { e.Path = "/a b" })
	add(func(e *Entry) { e.Path = `/a"b\c` })
	add(func(e *Entry) { e.Path = "/a=b" })
	add(func(e *Entry) { e.Path = "/é\u2028\x01\n" })
	add(func(e *Entry) { e.Path = "/\xff" })
	add(func(e *Entry) { e.Path = "" })
	add(func(e *Entry) { e.Remote = "" })
	add(func(e *Entry) { e.Method = "G\tT" })
	add(func(e *Entry) { e.Time = time.Date(10000, 1, 1, 0, 0, 0, 0, time.UTC) })
	add(func(e *Entry) { e.Time = time.Time{} })
	return es
}

// TestSameAsSlog compares every line with what slog's handler writes for
// the same record, in both formats, with and without attributes added
// with WithAttrs, and under WithGroup.
func TestSameAsSlog(t *testing.T) {
	withs := map[string][]slog.Attr{
		"none":      nil,
		"namespace": {slog.String("namespace", "corp")},
		"several":   {slog.String("namespace", "a b"), slog.Int("n", 3), slog.Group("g", slog.Bool("x", true)), slog.Any("err", fmt.Errorf("x=%q", "y"))},
	}
	for fname, f := range formats {
		for wname, with := range withs {
			for _, group := range []string{"", "grp"} {
				for i, e := range entries() {
					want := slogLine(t, f, with, group, e)
					got := ourLine(t, f, with, group, e)
					if got != want {
						t.Errorf("%s, with %s, group %q, entry %d:\n got %q\nwant %q", fname, wname, group, i, got, want)
					}
				}
			}
		}
	}
}

// TestFields checks the JSON line's fields by name, as a log reader sees
// them.
func TestFields(t *testing.T) {
	e := entries()[0]
	var m map[string]any
	if err := json.Unmarshal([]byte(ourLine(t, JSON, []slog.Attr{slog.String("namespace", "corp")}, "", e)), &m); err != nil {
		t.Fatal(err)
	}
	want := map[string]any{"time": "2026-03-04T05:06:07.891234567Z", "level": "INFO", "msg": "request", "namespace": "corp",
		"method": "GET", "path": e.Path, "status": 200.0, "bytes": 48.0, "duration": 41234e-9, "cache": "hit", "remote": "127.0.0.1"}
	if len(m) != len(want) {
		t.Errorf("fields %v, want %v", m, want)
	}
	for k, v := range want {
		if m[k] != v {
			t.Errorf("%s = %v, want %v", k, m[k], v)
		}
	}
}

// TestOtherRecords checks that records other than access-log lines are
// written by slog's handler, and that the level applies to both.
func TestOtherRecords(t *testing.T) {
	for fname, f := range formats {
		var got, want bytes.Buffer
		l := slog.New(NewHandler(&got, f, slog.LevelWarn))
		var ref *slog.Logger
		if f == JSON {
			ref = slog.New(slog.NewJSONHandler(&want, &slog.HandlerOptions{Level: slog.LevelWarn, ReplaceAttr: Seconds}))
		} else {
			ref = slog.New(slog.NewTextHandler(&want, &slog.HandlerOptions{Level: slog.LevelWarn}))
		}
		e := entries()[0]
		for _, l := range []*slog.Logger{l, ref} {
			Log(context.Background(), l, &e) // below the level: not written
			l.With("a", 1).WithGroup("g").LogAttrs(context.Background(), slog.LevelWarn, "careful", slog.String("k", "v"))
			l.Info("dropped")
		}
		// Times differ; compare without them.
		strip := func(s string) string {
			_, rest, _ := strings.Cut(s, "level=")
			if f == JSON {
				_, rest, _ = strings.Cut(s, `"level"`)
			}
			return rest
		}
		if got.Len() == 0 || strip(got.String()) != strip(want.String()) {
			t.Errorf("%s: got %q, want %q", fname, got.String(), want.String())
		}
		if strings.Contains(got.String(), "request") {
			t.Errorf("%s: access-log line written below the level: %q", fname, got.String())
		}
	}
}

// TestNoAllocations asserts that a line is formatted and written without
// allocating, in both formats.
func TestNoAllocations(t *testing.T) {
	if raceEnabled {
		t.Skip("allocation counts differ under the race detector")
	}
	for fname, f := range formats {
		l := slog.New(NewHandler(io.Discard, f, nil).WithAttrs([]slog.Attr{slog.String("namespace", "corp")}))
		e := entries()[0]
		ctx := context.Background()
		Log(ctx, l, &e)
		allocs := testing.AllocsPerRun(100, func() { Log(ctx, l, &e) })
		if allocs != 0 {
			t.Errorf("%s: %v allocations per line, want 0", fname, allocs)
		}
	}
}

// TestConcurrentLinesWhole writes lines from many goroutines, direct ones
// and others mixed, and checks every line is whole.
func TestConcurrentLinesWhole(t *testing.T) {
	var b bytes.Buffer // not safe for concurrent use: the Handler's mutex must serialize
	l := slog.New(NewHandler(&b, JSON, nil))
	var wg sync.WaitGroup
	for i := range 8 {
		wg.Go(func() {
			e := entries()[0]
			for range 200 {
				Log(context.Background(), l, &e)
				l.Info("other", "i", i)
			}
		})
	}
	wg.Wait()
	lines := strings.Split(strings.TrimSuffix(b.String(), "\n"), "\n")
	if len(lines) != 8*200*2 {
		t.Fatalf("%d lines, want %d", len(lines), 8*200*2)
	}
	for _, line := range lines {
		if !json.Valid([]byte(line)) {
			t.Fatalf("broken line %q", line)
		}
	}
}

// FuzzSameAsSlog compares lines for arbitrary strings and numbers.
func FuzzSameAsSlog(f *testing.F) {
	f.Add("GET", "/example.com/a/@v/v1.0.0.mod", "hit", "10.0.0.1", 200, int64(7), int64(12345), int64(1_700_000_000_123_456_789), true)
	f.Add("HEAD", "/a b\"", "", "", 404, int64(0), int64(-1), int64(0), false)
	f.Fuzz(func(t *testing.T, method, path, cache, remote string, status int, n, d, at int64, json bool) {
		fm := Text
		if json {
			fm = JSON
		}
		e := Entry{Time: time.Unix(0, at).In(time.FixedZone("z", int(at%86400))), Method: method, Path: path, Status: status,
			Bytes: n, Duration: time.Duration(d), Cache: cache, Remote: remote}
		if got, want := ourLine(t, fm, nil, "", e), slogLine(t, fm, nil, "", e); got != want {
			t.Errorf("got %q\nwant %q", got, want)
		}
	})
}

func BenchmarkLine(b *testing.B) {
	ctx := context.Background()
	e := entries()[0]
	for fname, f := range formats {
		b.Run(fname+"/accesslog", func(b *testing.B) {
			l := slog.New(NewHandler(io.Discard, f, nil))
			b.ReportAllocs()
			for b.Loop() {
				Log(ctx, l, &e)
			}
		})
		b.Run(fname+"/slog", func(b *testing.B) {
			var h slog.Handler = slog.NewTextHandler(io.Discard, nil)
			if f == JSON {
				h = slog.NewJSONHandler(io.Discard, nil)
			}
			l := slog.New(h)
			b.ReportAllocs()
			for b.Loop() {
				Log(ctx, l, &e)
			}
		})
	}
}
