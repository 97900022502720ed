package index

import (
	"fmt"
	"path/filepath"
	"testing"
	"time"
)

// TestEventsNeverBlock: while the writer is stuck (here: a write
// transaction held by the test), Stored and Touch return at once; events
// that do not fit the queue are dropped and counted, the others applied.
func TestEventsNeverBlock(t *testing.T) {
	x, _, err := Open(filepath.Join(t.TempDir(), "index.db"), Options{QueueSize: 1, FlushInterval: time.Hour})
	if err != nil {
		t.Fatal(err)
	}
	defer x.Close()
	tx, err := x.db.Begin(true) // the loop's next apply waits for it
	if err != nil {
		t.Fatal(err)
	}
	x.Stored("k0", 1, time.Unix(1, 0))
	flushed := make(chan struct{})
	go func() {
		defer close(flushed)
		x.Flush() // makes the loop apply k0, and wait for tx
	}()
	n := 1
	for x.Dropped() == 0 {
		x.Stored(fmt.Sprintf("k%d", n), 1, time.Unix(1, 0))
		n++
	}
	if err := tx.Rollback(); err != nil {
		t.Fatal(err)
	}
	<-flushed
	x.Flush()
	if _, objects := x.Totals(); objects+x.Dropped() != int64(n) {
		t.Errorf("%d applied + %d dropped, want %d events", objects, x.Dropped(), n)
	}
}
