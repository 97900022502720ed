package hosted

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"sync"
	"sync/atomic"

	"golang.org/x/mod/sumdb/note"
	"golang.org/x/mod/sumdb/tlog"

	"github.com/modproxy/modproxy/internal/atomicfile"
	"github.com/modproxy/modproxy/internal/storage"
)

// SharedStore is what a log in a shared store needs of it: reads, and a
// create that fails when the key exists (storage/s3's PutIfAbsent, a
// conditional "If-None-Match: *" write).
type SharedStore interface {
	storage.Opener
	PutIfAbsent(ctx context.Context, key string, r io.Reader) (created bool, err error)
}

// SharedLogPrefix is where a shared log's objects are: SharedLogPrefix +
// the record's index in 12 decimal digits. "_state/" is not a protocol
// path, so they are never served or collected.
const SharedLogPrefix = "_state/hosted/log/"

// seenFile, in a replica's state directory, holds the largest signed head
// of a shared log this replica verified.
const seenFile = "seen-head"

// SharedSegmentPrefix is where a shared log's segments are:
// SharedSegmentPrefix + the index of the segment's first record in 12
// decimal digits.
const SharedSegmentPrefix = "_state/hosted/segment/"

// segmentSize is the number of records in a segment of a shared log.
const segmentSize = 256

// maxRecordBatch bounds the record objects read at once.
const maxRecordBatch = 32

// maxSegmentBatch bounds the segments read at once (a segment holds up to
// segmentSize*maxRecord bytes).
const maxSegmentBatch = 8

// storeFiles keeps a log in a store shared by replicas: one object per
// record, which holds the record followed by the signed head of the tree
// it ends (size index+1). An object is created once and never replaced
// (SharedStore.PutIfAbsent): the create is the commit point and decides
// between two writers appending at the same index (the second gets
// ErrRaced), and S3 writes an object whole or not at all, so a killed
// append leaves nothing. Readers find the log's end as the first missing
// index.
//
// So that a replica's start does not read every record, runs of
// segmentSize records are also kept as segments: one object holding the
// records, then the signed head of the tree the run ends. A segment is a
// copy, written (create-once, like a record) after its last record was
// committed, by the writer that committed it or by any writable replica
// that finds it missing; it is checked like the records, against the head
// in it. read uses the segments from the start and the records after the
// last one; readRecords uses the records alone.
//
// A storeFiles is safe for concurrent use.
type storeFiles struct {
	store   SharedStore
	prefix  string // of the records
	segPre  string // of the segments
	segment int64  // records per segment

	// sealed is the number of records known to be covered by segments.
	sealed atomic.Int64
}

// OpenSharedLog opens the log kept in store under SharedLogPrefix, signed
// with key (the signer key every replica is configured with; see
// ParseKey): it reads every record (most of them in segments) and checks
// them against the heads signed with them. stateDir is this replica's own
// state directory, where the largest head it verified is remembered
// (seenFile): a log found shorter than that, or not consistent with it, is
// a Fault (ErrTampered), so a replica notices a history rolled back or
// rewritten in the bucket, even across its restarts. Writable: the log is
// appended to, the remembered head kept up to date and missing segments
// written; otherwise nothing is written (modproxy verify). Only errors of
// the store (and of a bad key or state directory) are returned; a log that
// does not verify opens with its Fault set.
func OpenSharedLog(ctx context.Context, store SharedStore, key, stateDir string, writable bool) (*Log, error) {
	return openSharedLog(ctx, store, key, stateDir, writable, segmentSize)
}

func openSharedLog(ctx context.Context, store SharedStore, key, stateDir string, writable bool, segment int64) (*Log, error) {
	signer, vkey, err := ParseKey(key)
	if err != nil {
		return nil, err
	}
	v, err := note.NewVerifier(vkey)
	if err != nil {
		return nil, fmt.Errorf("hosted log: %w", err)
	}
	if writable {
		if err := os.MkdirAll(stateDir, 0o700); err != nil {
			return nil, fmt.Errorf("hosted log: %w", err)
		}
	}
	seen := &seenHead{path: filepath.Join(stateDir, seenFile), verifier: v, writable: writable}
	if err := seen.load(); err != nil {
		return nil, err
	}
	if !writable {
		signer = nil
	}
	files := &storeFiles{store: store, prefix: SharedLogPrefix, segPre: SharedSegmentPrefix, segment: segment}
	return newLog(ctx, files, signer, vkey, seen)
}

func (s *storeFiles) key(i int64) string    { return fmt.Sprintf("%s%012d", s.prefix, i) }
func (s *storeFiles) segKey(i int64) string { return fmt.Sprintf("%s%012d", s.segPre, i) }

// read reads the segments from index from on (when from is the start of
// one), then the records after the last segment found.
func (s *storeFiles) read(ctx context.Context, from int64) (recs, heads [][]byte, head []byte, err error) {
	start := from
	for batch := int64(1); from%s.segment == 0; batch = min(2*batch, maxSegmentBatch) {
		objs := make([][]byte, batch)
		errs := make([]error, batch)
		var wg sync.WaitGroup
		for i := range batch {
			wg.Go(func() {
				objs[i], errs[i] = storage.ReadSmall(ctx, s.store, s.segKey(from+i*s.segment), s.segment*maxRecord+maxHead+1)
			})
		}
		wg.Wait()
		done := false
		for i := range batch {
			if errors.Is(errs[i], fs.ErrNotExist) {
				done = true
				break
			}
			if errs[i] != nil {
				return nil, nil, nil, fmt.Errorf("hosted log: reading the segment at %d: %w", from, errs[i])
			}
			rs, h, err := splitSegment(objs[i], s.segment)
			if err != nil {
				return nil, nil, nil, fmt.Errorf("hosted log: %w: the segment at %d: %w", ErrTampered, from, err)
			}
			// The head is checked where it ends the segment (Log.addRun).
			recs, heads, head = append(recs, rs...), append(append(heads, make([][]byte, s.segment-1)...), h), h
			from += s.segment
		}
		if done {
			break
		}
	}
	if from > start && start <= s.sealed.Load() {
		s.noteSealed(from) // every segment up to from exists
	}
	if from%s.segment == 0 {
		s.noteMissing(from) // the segment at from does not
	}
	first := int64(1) // usually nothing is new
	if from > start {
		first = maxRecordBatch // fewer than a segment's records follow the segments
	}
	rs, hs, h, err := s.readRecords(ctx, from, first)
	if err != nil {
		return nil, nil, nil, err
	}
	if h != nil {
		head = h
	}
	return append(recs, rs...), append(heads, hs...), head, nil
}

func (s *storeFiles) noteSealed(n int64) {
	for {
		old := s.sealed.Load()
		if n <= old || s.sealed.CompareAndSwap(old, n) {
			return
		}
	}
}

// noteMissing records that the segment at index n is missing.
func (s *storeFiles) noteMissing(n int64) {
	for {
		old := s.sealed.Load()
		if n >= old || s.sealed.CompareAndSwap(old, n) {
			return
		}
	}
}

// readAllRecords reads every record object, ignoring the segments.
func (s *storeFiles) readAllRecords(ctx context.Context, _ int64) (recs, heads [][]byte, head []byte, err error) {
	return s.readRecords(ctx, 0, 1)
}

// readRecords reads the record objects from index from on: first objects
// at once, then ever larger batches up to maxRecordBatch.
func (s *storeFiles) readRecords(ctx context.Context, from, first int64) (recs, heads [][]byte, head []byte, err error) {
	for batch := first; ; batch = min(2*batch, maxRecordBatch) {
		objs := make([][]byte, batch)
		errs := make([]error, batch)
		var wg sync.WaitGroup
		for i := range batch {
			wg.Go(func() { objs[i], errs[i] = storage.ReadSmall(ctx, s.store, s.key(from+i), maxRecord+maxHead+1) })
		}
		wg.Wait()
		for i := range batch {
			if errors.Is(errs[i], fs.ErrNotExist) {
				if err := s.checkEnd(ctx, from+i, errs[i+1:]); err != nil {
					return nil, nil, nil, err
				}
				return recs, heads, head, nil
			}
			if errs[i] != nil {
				return nil, nil, nil, fmt.Errorf("hosted log: reading record %d: %w", from+i, errs[i])
			}
			rec, h, err := splitObject(objs[i])
			if err != nil {
				return nil, nil, nil, fmt.Errorf("hosted log: %w: record %d: %w", ErrTampered, from+i, err)
			}
			recs, heads, head = append(recs, rec), append(heads, h), h
		}
		from += batch
	}
}

// checkEnd is called where the reads of record objects found record k
// missing, with the errors of the reads after k in the same batch: k is
// the end of the log unless a later record exists (one in the batch, or
// k+1 when the batch ended at k). Records are created in order, each after
// the one before it, so then k existed before the later one did, and it is
// read again: the reads run at once, and k's may have been answered before
// a writer committed k and the later one. Still missing, k was lost: an
// error wrapping ErrTampered. A read that fails otherwise is not taken as
// a loss (the next read looks again).
func (s *storeFiles) checkEnd(ctx context.Context, k int64, after []error) error {
	later := int64(-1)
	if j := slices.Index(after, nil); j >= 0 {
		later = k + 1 + int64(j)
	} else if len(after) == 0 {
		if ok, _ := s.present(ctx, k+1); ok {
			later = k + 1
		}
	}
	if later < 0 {
		return nil
	}
	if ok, err := s.present(ctx, k); !ok && err == nil {
		return fmt.Errorf("hosted log: %w: the object of record %d is missing, record %d exists", ErrTampered, k, later)
	}
	return nil
}

// present reports whether the object of record n exists; an error other
// than fs.ErrNotExist is returned.
func (s *storeFiles) present(ctx context.Context, n int64) (bool, error) {
	obj, err := s.store.Open(ctx, s.key(n))
	if errors.Is(err, fs.ErrNotExist) {
		return false, nil
	}
	if err != nil {
		return false, err
	}
	obj.Close()
	return true, nil
}

// seal writes the segments of records that are not yet in one: every whole
// run of s.segment records of recs (the verified log, with its stored
// hashes) past the ones known to be sealed, each with the head of the tree
// it ends, signed with sign. A segment another writer created first is
// left as it is (it holds the same records: both were verified against
// heads signed with one key).
func (s *storeFiles) seal(ctx context.Context, recs [][]byte, hashes []tlog.Hash, sign func(tlog.Tree) ([]byte, error)) error {
	for k := s.sealed.Load(); k+s.segment <= int64(len(recs)); k += s.segment {
		n := k + s.segment
		th, err := tlog.TreeHash(n, memHashes(hashes))
		if err != nil {
			return fmt.Errorf("hosted log: %w", err)
		}
		head, err := sign(tlog.Tree{N: n, Hash: th})
		if err != nil {
			return err
		}
		var obj bytes.Buffer
		for _, r := range recs[k:n] {
			obj.Write(r)
		}
		obj.Write(head)
		if _, err := s.store.PutIfAbsent(ctx, s.segKey(k), &obj); err != nil {
			return fmt.Errorf("hosted log: writing the segment at %d: %w", k, err)
		}
		s.noteSealed(n)
	}
	return nil
}

// splitSegment splits a segment into its n records and the signed head
// after them.
func splitSegment(b []byte, n int64) (recs [][]byte, head []byte, err error) {
	recs = make([][]byte, 0, n)
	for range n {
		rec, rest, ok := cutRecord(b)
		if !ok {
			return nil, nil, errors.New("fewer records than a segment holds")
		}
		if len(rec) > maxRecord {
			return nil, nil, errors.New("record too large")
		}
		recs = append(recs, rec)
		b = rest
	}
	if len(b) > maxHead {
		return nil, nil, errors.New("head too large")
	}
	return recs, b, nil
}

// splitObject splits a record object into the record (two lines) and the
// signed head after it.
func splitObject(b []byte) (rec, head []byte, err error) {
	if len(b) > maxRecord+maxHead {
		return nil, nil, errors.New("object too large")
	}
	rec, head, ok := cutRecord(b)
	if !ok {
		return nil, nil, errors.New("not a record")
	}
	return rec, head, nil
}

// cutRecord cuts the record (its first two lines, newlines included) off the
// front of b; ok is false when b holds fewer than two lines. rec cannot be
// appended to in place.
func cutRecord(b []byte) (rec, rest []byte, ok bool) {
	i := bytes.IndexByte(b, '\n')
	if i < 0 {
		return nil, nil, false
	}
	j := bytes.IndexByte(b[i+1:], '\n')
	if j < 0 {
		return nil, nil, false
	}
	end := i + 1 + j + 1
	return b[:end:end], b[end:], true
}

func (s *storeFiles) commit(ctx context.Context, n int64, rec []byte, _ []tlog.Hash, head []byte) error {
	obj := append(append([]byte(nil), rec...), head...)
	created, err := s.store.PutIfAbsent(ctx, s.key(n), bytes.NewReader(obj))
	if err != nil {
		return fmt.Errorf("hosted log: committing record %d: %w", n, err)
	}
	if !created {
		return fmt.Errorf("hosted log: record %d: %w", n, ErrRaced)
	}
	return nil
}

// seenHead is the largest head of a shared log this replica verified,
// remembered in its state directory. Safe for concurrent use.
type seenHead struct {
	path     string
	verifier note.Verifier
	writable bool

	mu   sync.Mutex
	tree tlog.Tree
}

func (s *seenHead) load() error {
	b, err := atomicfile.Read(s.path, maxHead)
	if errors.Is(err, fs.ErrNotExist) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("hosted log: the head this node saw: %w", err)
	}
	t, err := openHead(b, s.verifier)
	if err != nil {
		return fmt.Errorf("hosted log: the head this node saw (%s): %w", s.path, err)
	}
	s.tree = t
	return nil
}

// consistent checks that tree (with its stored hashes) extends the head
// this node saw, with a tlog consistency proof.
func (s *seenHead) consistent(tree tlog.Tree, hashes []tlog.Hash) error {
	s.mu.Lock()
	seen := s.tree
	s.mu.Unlock()
	if seen.N == 0 {
		return nil
	}
	if tree.N < seen.N {
		return fmt.Errorf("hosted log: %w: the shared log has %d records, but this node saw %d (records removed or the log rolled back; the head it saw is in %s)", ErrTampered, tree.N, seen.N, s.path)
	}
	proof, err := tlog.ProveTree(tree.N, seen.N, memHashes(hashes))
	if err == nil {
		err = tlog.CheckTree(proof, tree.N, tree.Hash, seen.N, seen.Hash)
	}
	if err != nil {
		return fmt.Errorf("hosted log: %w: the shared log of %d records is not an extension of the one of %d records this node saw (a rewritten history): %v", ErrTampered, tree.N, seen.N, err)
	}
	return nil
}

// check is consistent, and then remembers head when it is larger.
func (s *seenHead) check(tree tlog.Tree, hashes []tlog.Hash, head []byte) error {
	if err := s.consistent(tree, hashes); err != nil {
		return err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if !s.writable || tree.N <= s.tree.N {
		return nil
	}
	if err := atomicfile.Write(s.path, head, 0o644); err != nil {
		return fmt.Errorf("hosted log: remembering the head: %w", err)
	}
	s.tree = tree
	return nil
}
