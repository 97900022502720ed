// Package index is modproxy's metadata index: for every stored object its
// size, when it was stored, when it was last served and how often. It
// lives in a bbolt file beside the store and is updated off the hot path:
// Touch and Stored only enqueue an event (never blocking; an event that
// does not fit the queue is dropped and counted), and one goroutine applies
// queued events in batches, one transaction each: every FlushInterval, or
// once 4096 are queued (it is woken once per batch, not per event).
//
// The index is a cache of facts the store can give again: Rebuild
// recreates it from a walk of the store (sizes and modification times;
// access statistics restart from zero), and Open reports a missing or
// corrupt file so that the caller rebuilds. Safe for concurrent use.
//
// The size of a cache, wherever modproxy shows it (gc plans, the admin API
// and dashboard, metrics, modproxy index), is the sum of the sizes of every
// object the index records: module files, their recorded hashes, lists and
// checksum database files, as the store reported them when they were
// stored (Totals). The trash, the quarantine and the audit log are not in
// it.
package index

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"os"
	"sync"
	"sync/atomic"
	"time"

	bolt "go.etcd.io/bbolt"
	bolterrors "go.etcd.io/bbolt/errors"

	"github.com/modproxy/modproxy/internal/storage"
)

var bucket = []byte("objects")

// Record is what the index knows about one object.
type Record struct {
	Size       int64
	Stored     time.Time
	LastAccess time.Time
	Hits       int64
}

func (r Record) encode() []byte {
	b := make([]byte, 32)
	binary.BigEndian.PutUint64(b[0:], uint64(r.Size))
	binary.BigEndian.PutUint64(b[8:], uint64(r.Stored.UnixNano()))
	binary.BigEndian.PutUint64(b[16:], uint64(r.LastAccess.UnixNano()))
	binary.BigEndian.PutUint64(b[24:], uint64(r.Hits))
	return b
}

func decode(b []byte) (Record, bool) {
	if len(b) != 32 {
		return Record{}, false
	}
	return Record{
		Size:       int64(binary.BigEndian.Uint64(b[0:])),
		Stored:     time.Unix(0, int64(binary.BigEndian.Uint64(b[8:]))),
		LastAccess: time.Unix(0, int64(binary.BigEndian.Uint64(b[16:]))),
		Hits:       int64(binary.BigEndian.Uint64(b[24:])),
	}, true
}

type eventKind uint8

const (
	evTouch eventKind = iota
	evStored
	evDelete
)

type event struct {
	kind eventKind
	key  string
	size int64
	at   time.Time
}

// Options configures an Index.
type Options struct {
	FlushInterval time.Duration // default 1s
	QueueSize     int           // default 65536
}

// Index is the metadata index.
type Index struct {
	db      *bolt.DB
	path    string
	events  chan event
	kick    chan struct{} // a batch is queued: apply it before the tick
	kickAt  int           // queued events that make a batch
	flushC  chan chan struct{}
	done    chan struct{}
	stopped chan struct{}
	dropped atomic.Int64
	bytes   atomic.Int64
	objects atomic.Int64
	closeMu sync.Once
	opts    Options
}

// ErrCorrupt is returned by Open for an index file it cannot use.
var ErrCorrupt = errors.New("metadata index is corrupt")

// ErrLocked is returned by Open when another process holds the index.
var ErrLocked = errors.New("metadata index is in use by another process")

// Open opens the index at path. created reports that the file did not
// exist (the caller should Rebuild). A corrupt file is an error wrapping
// ErrCorrupt; the caller may remove it and open again.
func Open(path string, opts Options) (x *Index, created bool, err error) {
	if opts.FlushInterval <= 0 {
		opts.FlushInterval = time.Second
	}
	if opts.QueueSize <= 0 {
		opts.QueueSize = 65536
	}
	if _, err := os.Stat(path); errors.Is(err, os.ErrNotExist) {
		created = true
	}
	db, err := bolt.Open(path, 0o644, &bolt.Options{Timeout: 2 * time.Second, NoFreelistSync: true})
	if errors.Is(err, bolterrors.ErrTimeout) {
		return nil, false, fmt.Errorf("%w: %s", ErrLocked, path)
	}
	if err != nil {
		return nil, false, fmt.Errorf("%w: %s: %v", ErrCorrupt, path, err)
	}
	x = &Index{db: db, path: path, events: make(chan event, opts.QueueSize), kick: make(chan struct{}, 1), flushC: make(chan chan struct{}),
		done: make(chan struct{}), stopped: make(chan struct{}), opts: opts}
	err = db.Update(func(tx *bolt.Tx) error {
		b, err := tx.CreateBucketIfNotExists(bucket)
		if err != nil {
			return err
		}
		size, n, err := totals(b)
		x.objects.Store(n)
		x.bytes.Store(size)
		return err
	})
	if err != nil {
		db.Close()
		if !errors.Is(err, ErrCorrupt) {
			err = fmt.Errorf("%w: %v", ErrCorrupt, err)
		}
		return nil, false, err
	}
	x.kickAt = max(1, min(batchSize, opts.QueueSize/2))
	go x.loop()
	return x, created, nil
}

// Path returns the index file.
func (x *Index) Path() string { return x.path }

// Touch records that key was served at t. It never blocks.
func (x *Index) Touch(key string, t time.Time) { x.enqueue(event{kind: evTouch, key: key, at: t}) }

// Stored records that key was (re)written with size bytes at t.
func (x *Index) Stored(key string, size int64, t time.Time) {
	x.enqueue(event{kind: evStored, key: key, size: size, at: t})
}

// Deleted records that key left the store.
func (x *Index) Deleted(key string) { x.enqueue(event{kind: evDelete, key: key}) }

// enqueue queues e without waking the loop, unless a batch is full: one
// wake-up per batch, not per event.
func (x *Index) enqueue(e event) {
	select {
	case x.events <- e:
		if len(x.events) >= x.kickAt {
			select {
			case x.kick <- struct{}{}:
			default:
			}
		}
	default:
		x.dropped.Add(1)
	}
}

// batchSize is how many queued events are applied without waiting for
// the next tick (half the queue when that is smaller).
const batchSize = 4096

// Dropped returns how many events did not fit the queue.
func (x *Index) Dropped() int64 { return x.dropped.Load() }

// Totals returns the bytes and objects the index knows of.
func (x *Index) Totals() (bytes, objects int64) { return x.bytes.Load(), x.objects.Load() }

// Flush applies every event queued before the call.
func (x *Index) Flush() {
	c := make(chan struct{})
	select {
	case x.flushC <- c:
		<-c
	case <-x.stopped:
	}
}

func (x *Index) loop() {
	defer close(x.stopped)
	t := time.NewTicker(x.opts.FlushInterval)
	defer t.Stop()
	pending := make([]event, 0, 1024)
	drain := func() {
		for {
			select {
			case e := <-x.events:
				pending = append(pending, e)
			default:
				return
			}
		}
	}
	for {
		select {
		case <-x.kick:
		case <-t.C:
		case c := <-x.flushC:
			drain()
			x.apply(pending)
			pending = pending[:0]
			close(c)
			continue
		case <-x.done:
			drain()
			x.apply(pending)
			return
		}
		drain()
		x.apply(pending)
		pending = pending[:0]
	}
}

// apply writes a batch of events in one transaction. Touches of the same
// key are merged (one read and write of its record however often it was
// served), in order with the key's other events.
func (x *Index) apply(evs []event) {
	if len(evs) == 0 {
		return
	}
	merged := map[string]touchSum{}
	_ = x.db.Update(func(tx *bolt.Tx) error {
		b := tx.Bucket(bucket)
		for _, e := range evs {
			if e.kind == evTouch {
				t := merged[e.key]
				t.n++
				if e.at.After(t.last) {
					t.last = e.at
				}
				merged[e.key] = t
				continue
			}
			if t, ok := merged[e.key]; ok {
				t.apply(b, e.key)
				delete(merged, e.key)
			}
			k := []byte(e.key)
			old, had := decode(b.Get(k))
			switch e.kind {
			case evStored:
				r := Record{Size: e.size, Stored: e.at, LastAccess: e.at}
				if had {
					r.Hits = old.Hits
					x.bytes.Add(-old.Size)
				} else {
					x.objects.Add(1)
				}
				x.bytes.Add(e.size)
				_ = b.Put(k, r.encode())
			case evDelete:
				if had {
					x.bytes.Add(-old.Size)
					x.objects.Add(-1)
					_ = b.Delete(k)
				}
			}
		}
		for key, t := range merged {
			t.apply(b, key)
		}
		return nil
	})
}

// touchSum is the merged touches of one key in a batch.
type touchSum struct {
	n    int64
	last time.Time
}

func (t touchSum) apply(b *bolt.Bucket, key string) {
	k := []byte(key)
	old, had := decode(b.Get(k))
	if !had {
		return // served before indexed (rebuild in progress): ignore
	}
	old.Hits += t.n
	if t.last.After(old.LastAccess) {
		old.LastAccess = t.last
	}
	_ = b.Put(k, old.encode())
}

// Get returns the record of key.
func (x *Index) Get(key string) (Record, bool) {
	var r Record
	var ok bool
	_ = x.db.View(func(tx *bolt.Tx) error {
		r, ok = decode(tx.Bucket(bucket).Get([]byte(key)))
		return nil
	})
	return r, ok
}

// All calls fn for every record, in key order, from one consistent view.
func (x *Index) All(fn func(key string, r Record) error) error { return all(x.db, fn) }

func all(db *bolt.DB, fn func(key string, r Record) error) error {
	return db.View(func(tx *bolt.Tx) error {
		b := tx.Bucket(bucket)
		if b == nil {
			return nil // a read-only view of a file never opened for writing
		}
		return b.ForEach(func(k, v []byte) error {
			r, ok := decode(v)
			if !ok {
				return nil
			}
			return fn(string(k), r)
		})
	})
}

// totals sums the sizes of the records of b and counts them; a record
// that does not decode is an error wrapping ErrCorrupt.
func totals(b *bolt.Bucket) (bytes, objects int64, err error) {
	err = b.ForEach(func(k, v []byte) error {
		r, ok := decode(v)
		if !ok {
			return fmt.Errorf("%w: bad record for %q", ErrCorrupt, k)
		}
		objects++
		bytes += r.Size
		return nil
	})
	return bytes, objects, err
}

// Reader is a read-only view of an index file, for commands that look at
// a cache directory no server is running on. It never writes: it neither
// creates the file nor rebuilds it. Any number of Readers may have a file
// open at once, but not while an Index has it open (a server), nor an
// Index while a Reader has (bbolt locks the file: shared for readers,
// exclusive for the writer). Safe for concurrent use.
type Reader struct {
	db *bolt.DB
}

// OpenReader opens the index file at path read-only. The error wraps
// fs.ErrNotExist for a missing file, ErrLocked when a process holds the
// file open for writing, ErrCorrupt for a file that is not an index.
func OpenReader(path string) (*Reader, error) {
	if _, err := os.Stat(path); err != nil {
		return nil, err
	}
	db, err := bolt.Open(path, 0o644, &bolt.Options{ReadOnly: true, Timeout: time.Second})
	if errors.Is(err, bolterrors.ErrTimeout) {
		return nil, fmt.Errorf("%w: %s", ErrLocked, path)
	}
	if err != nil {
		return nil, fmt.Errorf("%w: %s: %v", ErrCorrupt, path, err)
	}
	return &Reader{db: db}, nil
}

// All calls fn for every record, in key order, from one consistent view.
func (r *Reader) All(fn func(key string, r Record) error) error { return all(r.db, fn) }

// Totals returns the bytes and objects the index records, from one
// consistent view: the same figures as Index.Totals of a server that has
// applied every event.
func (r *Reader) Totals() (bytes, objects int64, err error) {
	err = r.db.View(func(tx *bolt.Tx) error {
		b := tx.Bucket(bucket)
		if b == nil {
			return nil
		}
		bytes, objects, err = totals(b)
		return err
	})
	return bytes, objects, err
}

// Close closes the file.
func (r *Reader) Close() error { return r.db.Close() }

// Walker lists a store's objects.
type Walker interface {
	Walk(ctx context.Context, prefix string, fn func(storage.Info) error) error
}

// Rebuild replaces the index with what a walk of the store finds: sizes
// and modification times (as stored and last-access times); hit counts of
// objects already indexed are kept.
func (x *Index) Rebuild(ctx context.Context, store Walker) error {
	x.Flush()
	var infos []storage.Info
	if err := store.Walk(ctx, "", func(i storage.Info) error {
		infos = append(infos, i)
		return nil
	}); err != nil {
		return fmt.Errorf("rebuilding index: %w", err)
	}
	var n, size int64
	err := x.db.Update(func(tx *bolt.Tx) error {
		old := tx.Bucket(bucket)
		hits := map[string]Record{}
		_ = old.ForEach(func(k, v []byte) error {
			if r, ok := decode(v); ok {
				hits[string(k)] = r
			}
			return nil
		})
		if err := tx.DeleteBucket(bucket); err != nil {
			return err
		}
		b, err := tx.CreateBucket(bucket)
		if err != nil {
			return err
		}
		for _, i := range infos {
			r := Record{Size: i.Size, Stored: i.ModTime, LastAccess: i.ModTime}
			if h, ok := hits[i.Key]; ok {
				r.Hits = h.Hits
				if h.LastAccess.After(r.LastAccess) {
					r.LastAccess = h.LastAccess
				}
			}
			if err := b.Put([]byte(i.Key), r.encode()); err != nil {
				return err
			}
			n++
			size += i.Size
		}
		return nil
	})
	if err != nil {
		return fmt.Errorf("rebuilding index: %w", err)
	}
	x.objects.Store(n)
	x.bytes.Store(size)
	return nil
}

// Close applies pending events and closes the file.
func (x *Index) Close() error {
	var err error
	x.closeMu.Do(func() {
		close(x.done)
		<-x.stopped
		err = x.db.Close()
	})
	return err
}
