package logbuf

import (
	"bytes"
	"strings"
	"sync"
	"testing"
	"time"
)

type syncBuf struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuf) Write(p []byte) (int, error) { s.mu.Lock(); defer s.mu.Unlock(); return s.b.Write(p) }
func (s *syncBuf) String() string              { s.mu.Lock(); defer s.mu.Unlock(); return s.b.String() }

func TestFlushesOnTimerAndClose(t *testing.T) {
	var out syncBuf
	w := New(&out, 20*time.Millisecond)
	var wg sync.WaitGroup
	for range 10 {
		wg.Go(func() {
			for range 100 {
				w.Write([]byte("a whole line\n"))
			}
		})
	}
	wg.Wait()
	deadline := time.Now().Add(5 * time.Second)
	for out.String() == "" {
		if time.Now().After(deadline) {
			t.Fatal("timer never flushed")
		}
		time.Sleep(5 * time.Millisecond)
	}
	w.Write([]byte("last\n"))
	w.Close()
	s := out.String()
	if strings.Count(s, "a whole line\n") != 1000 || !strings.HasSuffix(s, "last\n") {
		t.Fatalf("lost or torn lines: %d", strings.Count(s, "a whole line\n"))
	}
}
