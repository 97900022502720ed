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
// corrupt file, or one whose first rebuild never finished (the process
// was stopped during it), so that the caller rebuilds. Open reads the
// totals recorded by the last transaction, not every record, so it takes
// the same time for any number of objects. A Rebuild may run
// while objects are stored and deleted: what changes during its walk is
// in the result. Safe for concurrent use.
//
// The size of a cache, wherever modproxy shows it (gc plans, the admin API
// and dashboard, metrics, modproxy index), is the sum of the sizes of every
// object the index records: module files, their recorded hashes, lists and
// checksum database files, as the store reported them when they were
// stored (Totals). The trash, the quarantine and the audit log are not in
// it.
package index

import (
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"sync"
	"sync/atomic"
	"time"

	bolt "go.etcd.io/bbolt"
	bolterrors "go.etcd.io/bbolt/errors"

	"github.com/modproxy/modproxy/internal/storage"
)

var (
	bucket = []byte("objects")
	meta   = []byte("meta")
	// pendingKey in meta marks an index created but not yet rebuilt.
	pendingKey = []byte("rebuild-pending")
	// totalsKey in meta holds the objects and bytes as of the transaction
	// that wrote them (its id is stored too): Open reads them instead of
	// every record when no other writer (an earlier version) came after.
	totalsKey = []byte("totals")
)

// putTotals records the totals in the meta bucket of a write transaction.
func (x *Index) putTotals(tx *bolt.Tx) error {
	b := make([]byte, 24)
	binary.BigEndian.PutUint64(b[0:], uint64(tx.ID()))
	binary.BigEndian.PutUint64(b[8:], uint64(x.objects.Load()))
	binary.BigEndian.PutUint64(b[16:], uint64(x.bytes.Load()))
	return tx.Bucket(meta).Put(totalsKey, b)
}

// recordedTotals returns the totals recorded by the last write
// transaction, if it was the one that recorded them.
func recordedTotals(tx *bolt.Tx) (objects, bytes int64, ok bool) {
	m := tx.Bucket(meta)
	if m == nil {
		return 0, 0, false
	}
	b := m.Get(totalsKey)
	if len(b) != 24 || binary.BigEndian.Uint64(b[0:]) != uint64(tx.ID()) {
		return 0, 0, false
	}
	return int64(binary.BigEndian.Uint64(b[8:])), int64(binary.BigEndian.Uint64(b[16:])), true
}

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

	rebuildMu sync.Mutex // serializes Rebuilds
	trackMu   sync.Mutex
	// changed holds, while a Rebuild walks the store, the keys stored
	// (true) or deleted (false) since it began; nil otherwise.
	changed map[string]bool
}

// ErrCorrupt is returned by Open for an index file it cannot use.
var ErrCorrupt = errors.New("metadata index is corrupt")

// ErrLocked is returned by Open when another process holds the index.
var ErrLocked = errors.New("metadata index is in use by another process")

// Open opens the index at path. A file that cannot be opened or created
// (permissions, missing directory) is an error wrapping the *fs.PathError.
// stale reports that the file did not exist
// or that no Rebuild has completed since it was created: the caller
// should Rebuild. A corrupt file is an error wrapping ErrCorrupt; the
// caller may remove it and open again.
func Open(path string, opts Options) (x *Index, stale bool, err error) {
	if opts.FlushInterval <= 0 {
		opts.FlushInterval = time.Second
	}
	if opts.QueueSize <= 0 {
		opts.QueueSize = 65536
	}
	_, serr := os.Stat(path)
	created := errors.Is(serr, os.ErrNotExist)
	// The freelist is written at every commit (NoFreelistSync false): without
	// it bbolt rebuilds it at Open by reading every page, which took start-up
	// time and resident memory in proportion to the index.
	db, err := bolt.Open(path, 0o644, &bolt.Options{Timeout: 2 * time.Second, NoFreelistSync: false})
	if errors.Is(err, bolterrors.ErrTimeout) {
		return nil, false, fmt.Errorf("%w: %s", ErrLocked, path)
	}
	var pe *fs.PathError
	if errors.As(err, &pe) { // cannot open or create the file: not its content
		return nil, false, fmt.Errorf("opening metadata index: %w", err)
	}
	if err != nil {
		return nil, false, fmt.Errorf("%w: %s: %v", ErrCorrupt, path, err)
	}
	x = &Index{db: db, path: path, events: make(chan event, opts.QueueSize), kick: make(chan struct{}, 1), flushC: make(chan chan struct{}),
		done: make(chan struct{}), stopped: make(chan struct{}), opts: opts}
	var recorded bool
	_ = db.View(func(tx *bolt.Tx) error {
		var n, size int64
		n, size, recorded = recordedTotals(tx)
		x.objects.Store(n)
		x.bytes.Store(size)
		return nil
	})
	err = db.Update(func(tx *bolt.Tx) error {
		b, err := tx.CreateBucketIfNotExists(bucket)
		if err != nil {
			return err
		}
		m, err := tx.CreateBucketIfNotExists(meta)
		if err != nil {
			return err
		}
		if created {
			if err := m.Put(pendingKey, []byte{1}); err != nil {
				return err
			}
		}
		stale = m.Get(pendingKey) != nil
		if !recorded { // a file of an earlier version: count once
			var n, size int64
			if err := b.ForEach(func(k, v []byte) error {
				r, ok := decode(v)
				if !ok {
					return fmt.Errorf("%w: bad record for %q", ErrCorrupt, k)
				}
				n++
				size += r.Size
				return nil
			}); err != nil {
				return err
			}
			x.objects.Store(n)
			x.bytes.Store(size)
		}
		return x.putTotals(tx)
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
	return x, stale, nil
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
		x.trackMu.Lock()
		changed := x.changed
		x.trackMu.Unlock()
		for _, e := range evs {
			if changed != nil && e.kind != evTouch {
				x.trackMu.Lock()
				changed[e.key] = e.kind == evStored
				x.trackMu.Unlock()
			}
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
		return x.putTotals(tx)
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

// rebuildBatch is how many walked objects one transaction of Rebuild
// writes: memory stays bounded whatever the store's size.
const rebuildBatch = 4096

// seenBucket lists, while Rebuild runs, the keys its walk found.
var seenBucket = []byte("rebuild-seen")

// Rebuild makes the index what a walk of the store finds: sizes and
// modification times (as stored and last-access times); hit counts and
// later accesses of objects already indexed are kept; records of objects
// the walk did not find are removed at the end. Objects stored or deleted
// through the index while the walk runs are kept or left out as those
// events say, whatever the walk saw of them. It writes in batches (memory
// does not grow with the store): a walk that fails leaves what it has
// written so far and removes nothing, and an index that was stale stays
// stale. Concurrent Rebuilds are serialized.
func (x *Index) Rebuild(ctx context.Context, store Walker) error {
	x.rebuildMu.Lock()
	defer x.rebuildMu.Unlock()
	x.setTracking(map[string]bool{})
	defer x.setTracking(nil)
	x.Flush()
	var empty bool // no record to check at the end: the walk and events make them all
	if err := x.db.Update(func(tx *bolt.Tx) error {
		k, _ := tx.Bucket(bucket).Cursor().First()
		empty = k == nil
		if tx.Bucket(seenBucket) != nil {
			if err := tx.DeleteBucket(seenBucket); err != nil {
				return err
			}
		}
		_, err := tx.CreateBucket(seenBucket)
		return err
	}); err != nil {
		return fmt.Errorf("rebuilding index: %w", err)
	}
	batch := make([]storage.Info, 0, rebuildBatch)
	write := func() error {
		err := x.db.Update(func(tx *bolt.Tx) error {
			b, seen := tx.Bucket(bucket), tx.Bucket(seenBucket)
			// No event is being applied now (bbolt has one writer at a
			// time): changed holds every change since the walk began.
			x.trackMu.Lock()
			defer x.trackMu.Unlock()
			for _, i := range batch {
				if err := seen.Put([]byte(i.Key), nil); err != nil {
					return err
				}
				if _, ok := x.changed[i.Key]; ok {
					continue // its event during the walk decides
				}
				r := Record{Size: i.Size, Stored: i.ModTime, LastAccess: i.ModTime}
				if old, had := decode(b.Get([]byte(i.Key))); had {
					r.Hits = old.Hits
					if old.LastAccess.After(r.LastAccess) {
						r.LastAccess = old.LastAccess
					}
					x.bytes.Add(-old.Size)
				} else {
					x.objects.Add(1)
				}
				x.bytes.Add(r.Size)
				if err := b.Put([]byte(i.Key), r.encode()); err != nil {
					return err
				}
			}
			return x.putTotals(tx)
		})
		batch = batch[:0]
		return err
	}
	if err := store.Walk(ctx, "", func(i storage.Info) error {
		batch = append(batch, i)
		if len(batch) == rebuildBatch {
			return write()
		}
		return nil
	}); err != nil {
		return fmt.Errorf("rebuilding index: %w", err)
	}
	if err := write(); err != nil {
		return fmt.Errorf("rebuilding index: %w", err)
	}
	err := x.db.Update(func(tx *bolt.Tx) error {
		b, seen := tx.Bucket(bucket), tx.Bucket(seenBucket)
		x.trackMu.Lock()
		changed := x.changed
		x.trackMu.Unlock()
		finish := func() error {
			if err := tx.DeleteBucket(seenBucket); err != nil {
				return err
			}
			if err := tx.Bucket(meta).Delete(pendingKey); err != nil {
				return err
			}
			return x.putTotals(tx)
		}
		if empty { // totals kept by the batches and events
			return finish()
		}
		var gone [][]byte
		var n, size int64
		if err := b.ForEach(func(k, v []byte) error {
			if seen.Get(k) == nil && !changed[string(k)] { // not in the store, not stored since
				gone = append(gone, bytes.Clone(k))
				return nil
			}
			if r, ok := decode(v); ok {
				n++
				size += r.Size
			}
			return nil
		}); err != nil {
			return err
		}
		for _, k := range gone {
			if err := b.Delete(k); err != nil {
				return err
			}
		}
		// Set here, before another batch of events can change them.
		x.objects.Store(n)
		x.bytes.Store(size)
		return finish()
	})
	if err != nil {
		return fmt.Errorf("rebuilding index: %w", err)
	}
	return nil
}

func (x *Index) setTracking(m map[string]bool) {
	x.trackMu.Lock()
	x.changed = m
	x.trackMu.Unlock()
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
