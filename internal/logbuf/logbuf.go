// Package logbuf is a buffered, flushed-on-a-timer io.Writer for logs: the
// access log writes one line per request, and one write(2) per line costs
// more than serving a small cached file. Lines are whole (each Write is
// appended under a mutex), flushed at least every interval and on Close.
package logbuf

import (
	"bufio"
	"io"
	"sync"
	"time"
)

// Writer buffers writes to an underlying writer.
type Writer struct {
	mu   sync.Mutex
	bw   *bufio.Writer
	stop chan struct{}
	done chan struct{}
	once sync.Once
}

// New returns a Writer flushing to w at least every interval.
func New(w io.Writer, interval time.Duration) *Writer {
	b := &Writer{bw: bufio.NewWriterSize(w, 64<<10), stop: make(chan struct{}), done: make(chan struct{})}
	go func() {
		defer close(b.done)
		t := time.NewTicker(interval)
		defer t.Stop()
		for {
			select {
			case <-b.stop:
				return
			case <-t.C:
				b.Flush()
			}
		}
	}()
	return b
}

// Write appends p.
func (b *Writer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.bw.Write(p)
}

// Flush writes out what is buffered.
func (b *Writer) Flush() error {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.bw.Flush()
}

// Close stops the timer and flushes.
func (b *Writer) Close() error {
	b.once.Do(func() { close(b.stop); <-b.done })
	return b.Flush()
}
