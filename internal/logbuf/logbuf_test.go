package logbuf

import (
	"bytes"
	"strings"
	"sync"
	"testing"
	"testing/synctest"
	"time"
)

type syncBuf struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuf) Write(p []byte) (int, error) { s.mu.Lock(); defer s.mu.Unlock(); return s.b.Write(p) }
func (s *syncBuf) String() string              { s.mu.Lock(); defer s.mu.Unlock(); return s.b.String() }

// TestFlushesOnTimerAndClose: writes stay buffered until the interval
// elapses (fake time in a bubble), lines are never torn, and Close flushes
// what is left.
func TestFlushesOnTimerAndClose(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		var out syncBuf
		w := New(&out, 200*time.Millisecond)
		var wg sync.WaitGroup
		for range 10 {
			wg.Go(func() {
				for range 100 {
					if _, err := w.Write([]byte("a whole line\n")); err != nil {
						t.Error(err)
						return
					}
				}
			})
		}
		wg.Wait()
		synctest.Wait()
		if s := out.String(); s != "" {
			t.Fatalf("flushed %d bytes before the interval", len(s))
		}
		time.Sleep(200 * time.Millisecond)
		synctest.Wait()
		if n := strings.Count(out.String(), "a whole line\n"); n != 1000 || len(out.String()) != 1000*len("a whole line\n") {
			t.Fatalf("after the interval: %d whole lines in %d bytes, want 1000", n, len(out.String()))
		}
		if _, err := w.Write([]byte("last\n")); err != nil {
			t.Fatal(err)
		}
		if err := w.Close(); err != nil {
			t.Fatal(err)
		}
		if s := out.String(); !strings.HasSuffix(s, "a whole line\nlast\n") {
			t.Fatalf("Close did not flush the last line: %q", s[max(0, len(s)-40):])
		}
		if err := w.Close(); err != nil {
			t.Fatalf("second Close: %v", err)
		}
	})
}
