package hosted

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"maps"
	"strings"
	"sync"

	"golang.org/x/mod/module"
	"golang.org/x/mod/sumdb/note"
	"golang.org/x/mod/sumdb/tlog"
)

// LogName is the name of the private log's signing key (the first element
// of its signed tree heads' signature lines) when the server makes it.
const LogName = "modproxy-hosted"

// maxRecord bounds one record (two go.sum lines); maxHead one signed head.
const (
	maxRecord = 4096
	maxHead   = 4096
)

// Entry is what the log says about one module version: the h1 hashes of
// its zip and its go.mod, and the record's index in the log.
type Entry struct {
	Index int64
	Zip   string // "h1:..." of the zip
	Mod   string // "h1:..." of the go.mod
}

// Errors of the log, for errors.Is.
var (
	// ErrTampered: the log's records, its signed heads, or the head this
	// node saw before do not agree (a changed, removed or forked history).
	ErrTampered = errors.New("log tampered with")
	// ErrRaced: another writer committed the record this append was to
	// commit (two replicas appending at once); nothing was written.
	ErrRaced = errors.New("another writer appended to the log first")
)

// Log is the private transparency log of hosted versions, on
// golang.org/x/mod/sumdb/tlog: each record is a version's two go.sum lines
// ("PATH VERSION h1:..." and "PATH VERSION/go.mod h1:..."), as the public
// checksum database's records are, and every append is sealed by a tree
// head signed with the server's key (golang.org/x/mod/sumdb/note).
//
// The records and their stored hashes are held in memory (a record is two
// short lines); where they are kept is the log's files: a directory of one
// node (OpenLog, see dirFiles for its durability) or a store shared by
// replicas (OpenSharedLog, see storeFiles). The hashes are recomputed from
// the records when the log is read, so a record changed after it was
// committed shows up as a tree that does not hash to its signed head.
//
// A Log whose records do not match its signed heads (Fault) answers
// lookups from what it read but refuses to append: a log is never
// extended past a history it cannot verify.
//
// A Log is safe for concurrent use. One process at a time appends to a
// directory; a shared log may be appended to by several, each append
// being a conditional create of its record (ErrRaced when another came
// first) and, between replicas, serialised by the caller's cluster lock.
type Log struct {
	files    logFiles
	signer   note.Signer // nil when read-only
	verifier note.Verifier
	vkey     string
	seen     *seenHead // shared logs: the largest head this node verified

	// writeMu serialises everything that changes the state below (Sync,
	// reload, Append), so that Append can commit, which is network I/O
	// for a shared log, without holding mu: readers are not blocked by a
	// slow store.
	writeMu sync.Mutex

	mu      sync.Mutex
	tree    tlog.Tree
	head    []byte // the signed note of tree (nil: nothing committed and read-only)
	recs    [][]byte
	hashes  []tlog.Hash // stored hashes of recs; only ever appended to
	entries map[string]Entry
	order   []string // path@version of each record, in log order (for Versions)
	fault   error    // non-nil: what Sync found wrong (wraps ErrTampered)
}

// logFiles keeps a log's records and signed heads.
type logFiles interface {
	// read returns the records committed from index from on, the signed
	// head that committed each one when the files keep one per record (nil
	// otherwise), and the latest signed head (nil: nothing was ever
	// committed). Records past the latest head are not returned.
	read(ctx context.Context, from int64) (recs, heads [][]byte, head []byte, err error)
	// commit stores record n (the log's size before it), its stored hashes
	// and the signed head of size n+1, durably, or fails with nothing
	// committed; ErrRaced when another writer committed record n first.
	commit(ctx context.Context, n int64, rec []byte, hashes []tlog.Hash, head []byte) error
}

// newLog reads files into a new log. signer is nil for a read-only log.
func newLog(ctx context.Context, files logFiles, signer note.Signer, vkey string, seen *seenHead) (*Log, error) {
	v, err := note.NewVerifier(vkey)
	if err != nil {
		return nil, fmt.Errorf("hosted log: verifier key: %w", err)
	}
	l := &Log{files: files, signer: signer, verifier: v, vkey: vkey, seen: seen, entries: map[string]Entry{}}
	if err := l.reload(ctx); err != nil && !errors.Is(err, ErrTampered) {
		return nil, err
	}
	return l, nil
}

// VerifierKey returns the log's public key (note verifier key syntax).
func (l *Log) VerifierKey() string { return l.vkey }

// Fault returns what the last Sync found wrong with the log (an error
// wrapping ErrTampered), or nil.
func (l *Log) Fault() error {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.fault
}

// Sync reads what was committed to the log's files since it was last read
// (by other replicas, for a shared log) and checks it: every new record
// must extend the verified tree to its signed head, records read again
// must not have changed, and a shared log must be consistent with the
// largest head this node saw before (a tlog consistency proof), so that a
// removed or rewritten history is found. A failure of that kind is
// returned (wrapping ErrTampered) and kept as Fault until a Sync finds the
// log well again; the log then holds the verified prefix. Errors reading
// the files are returned as they are (the log stays as it was).
func (l *Log) Sync(ctx context.Context) error {
	l.writeMu.Lock()
	defer l.writeMu.Unlock()
	l.mu.Lock()
	from, fault := int64(len(l.recs)), l.fault
	l.mu.Unlock()
	if fault != nil {
		return l.reload(ctx)
	}
	recs, heads, head, err := l.files.read(ctx, from)
	if err != nil {
		if errors.Is(err, ErrTampered) {
			l.mu.Lock()
			l.fault = err
			l.mu.Unlock()
		}
		return err
	}
	l.mu.Lock()
	err = l.apply(from, recs, heads, head)
	if err == nil && l.seen != nil {
		err = l.seen.check(l.tree, l.hashes, l.head)
	}
	l.fault = err
	l.mu.Unlock()
	if err == nil {
		l.seal(ctx)
	}
	return err
}

// reload reads the whole log again (after a Fault, what is in memory may
// be what was wrong) and replaces what the log holds with what it read,
// the verified prefix when it still does not verify.
func (l *Log) reload(ctx context.Context) error {
	fresh, err := l.readAll(ctx, l.files.read)
	if fresh == nil {
		if errors.Is(err, ErrTampered) { // files that cannot even be parsed
			l.mu.Lock()
			l.fault = err
			l.mu.Unlock()
		}
		return err
	}
	if err == nil && l.seen != nil {
		err = l.seen.check(fresh.tree, fresh.hashes, fresh.head)
	}
	l.mu.Lock()
	l.tree, l.head, l.recs, l.hashes, l.entries, l.order = fresh.tree, fresh.head, fresh.recs, fresh.hashes, fresh.entries, fresh.order
	if l.head == nil && l.signer != nil {
		if h, serr := l.sign(l.tree); serr == nil {
			l.head = h
		}
	}
	l.fault = err
	l.mu.Unlock()
	if err == nil {
		l.seal(ctx)
	}
	return err
}

// seal has a shared log's files write the segments the log's records fill
// and the store does not hold yet (see storeFiles). It is an optimisation
// for readers, not a commit: an error leaves the records as the truth, and
// the next append, Sync or start tries again. Called with writeMu held,
// on a writable log without a fault.
func (l *Log) seal(ctx context.Context) {
	s, ok := l.files.(*storeFiles)
	if !ok || l.signer == nil {
		return
	}
	l.mu.Lock()
	recs, hashes := l.recs, l.hashes
	l.mu.Unlock()
	_ = s.seal(ctx, recs, hashes, l.sign)
}

// apply adds records read from index from on (some of which an Append of
// this process may have added meanwhile: those must be the same bytes).
// heads, when the files keep them, holds the head that committed a record
// or ends a run of records (a segment), nil for the records inside a run:
// a run is added only once the tree it makes is the one its head signed,
// so what the log holds after an error is the verified prefix.
// Called with mu held.
func (l *Log) apply(from int64, recs, heads [][]byte, head []byte) error {
	runStart := -1 // index in recs of the first record of the run being read
	for i, rec := range recs {
		n := from + int64(i)
		if n < int64(len(l.recs)) {
			if !bytes.Equal(rec, l.recs[n]) {
				return fmt.Errorf("hosted log: %w: record %d changed after it was committed", ErrTampered, n)
			}
			continue
		}
		if heads == nil {
			if err := l.addRun(n, recs[i:i+1], nil); err != nil {
				return err
			}
			continue
		}
		if runStart < 0 {
			runStart = i
		}
		if heads[i] == nil {
			continue
		}
		if err := l.addRun(from+int64(runStart), recs[runStart:i+1], heads[i]); err != nil {
			return err
		}
		runStart = -1
	}
	if runStart >= 0 {
		return fmt.Errorf("hosted log: %w: records from %d on without a signed head", ErrTampered, from+int64(runStart))
	}
	if head == nil {
		return nil
	}
	tree, err := l.openHead(head)
	if err != nil {
		return err
	}
	if tree.N < int64(len(l.recs)) {
		return nil // read before this process committed more (the records read were the same)
	}
	if tree.N != int64(len(l.recs)) {
		return fmt.Errorf("hosted log: %w: the signed head has %d records, the files %d", ErrTampered, tree.N, len(l.recs))
	}
	th, err := tlog.TreeHash(tree.N, memHashes(l.hashes))
	if err != nil {
		return fmt.Errorf("hosted log: %w", err)
	}
	l.tree, l.head = tree, head
	if th != tree.Hash {
		return fmt.Errorf("hosted log: %w: the records do not hash to the signed tree head (size %d)", ErrTampered, tree.N)
	}
	return nil
}

// addRun adds the records of run as records n, n+1, ...; with head (the
// head that committed the last of them) set, only if the tree they make
// is the one head signed: otherwise nothing is added. Called with mu held.
func (l *Log) addRun(n int64, run [][]byte, head []byte) error {
	type added struct {
		key string
		e   Entry
	}
	adds := make([]added, len(run))
	all := l.hashes
	for i, rec := range run {
		path, version, e, err := parseRecord(rec)
		if err != nil {
			return fmt.Errorf("hosted log: %w: record %d: %w", ErrTampered, n+int64(i), err)
		}
		hs, err := tlog.StoredHashes(n+int64(i), rec, memHashes(all))
		if err != nil {
			return fmt.Errorf("hosted log: %w", err)
		}
		all = append(all, hs...) // in place past len: no snapshot (hashReader) sees it, and l.hashes only changes on success
		e.Index = n + int64(i)
		adds[i] = added{path + "@" + version, e}
	}
	end := n + int64(len(run))
	if head != nil {
		tree, err := l.openHead(head)
		if err != nil {
			return fmt.Errorf("hosted log: record %d: %w", end-1, err)
		}
		th, err := tlog.TreeHash(end, memHashes(all))
		if err != nil {
			return fmt.Errorf("hosted log: %w", err)
		}
		if tree.N != end || th != tree.Hash {
			if len(run) == 1 {
				return fmt.Errorf("hosted log: %w: record %d does not extend the verified log to the head signed with it", ErrTampered, n)
			}
			return fmt.Errorf("hosted log: %w: records %d to %d (a segment) do not extend the verified log to the head signed with them", ErrTampered, n, end-1)
		}
		l.tree, l.head = tree, head
	}
	l.recs = append(l.recs, run...)
	l.hashes = all
	for _, a := range adds {
		l.entries[a.key] = a.e // a later record (a re-publish a purge allowed) supersedes
		l.order = append(l.order, a.key)
	}
	return nil
}

// openHead verifies the signature of a head and parses its tree.
func (l *Log) openHead(msg []byte) (tlog.Tree, error) {
	return openHead(msg, l.verifier)
}

func openHead(msg []byte, v note.Verifier) (tlog.Tree, error) {
	n, err := note.Open(msg, note.VerifierList(v))
	if err != nil {
		return tlog.Tree{}, fmt.Errorf("hosted log: head: %w", err)
	}
	t, err := tlog.ParseTree([]byte(n.Text))
	if err != nil {
		return tlog.Tree{}, fmt.Errorf("hosted log: head: %w", err)
	}
	return t, nil
}

func (l *Log) sign(t tlog.Tree) ([]byte, error) {
	b, err := note.Sign(&note.Note{Text: string(tlog.FormatTree(t))}, l.signer)
	if err != nil {
		return nil, fmt.Errorf("hosted log: signing the head: %w", err)
	}
	return b, nil
}

// memHashes reads stored hashes from a slice.
func memHashes(hs []tlog.Hash) tlog.HashReader {
	return tlog.HashReaderFunc(func(idx []int64) ([]tlog.Hash, error) {
		out := make([]tlog.Hash, len(idx))
		for i, x := range idx {
			if x < 0 || x >= int64(len(hs)) {
				return nil, fmt.Errorf("stored hash %d not in the log", x)
			}
			out[i] = hs[x]
		}
		return out, nil
	})
}

// formatRecord is a record: the version's go.sum lines.
func formatRecord(path, version string, e Entry) []byte {
	return fmt.Appendf(nil, "%s %s %s\n%s %s/go.mod %s\n", path, version, e.Zip, path, version, e.Mod)
}

func parseRecord(rec []byte) (path, version string, e Entry, err error) {
	lines := strings.Split(strings.TrimSuffix(string(rec), "\n"), "\n")
	if len(lines) != 2 || !bytes.HasSuffix(rec, []byte("\n")) {
		return "", "", Entry{}, errors.New("not two go.sum lines")
	}
	f0, f1 := strings.Fields(lines[0]), strings.Fields(lines[1])
	if len(f0) != 3 || len(f1) != 3 || f0[0] != f1[0] || f1[1] != f0[1]+"/go.mod" {
		return "", "", Entry{}, errors.New("not the go.sum lines of one version")
	}
	return f0[0], f0[1], Entry{Zip: f0[2], Mod: f1[2]}, nil
}

// Lookup returns the latest entry of path@version.
func (l *Log) Lookup(path, version string) (Entry, bool) {
	l.mu.Lock()
	defer l.mu.Unlock()
	e, ok := l.entries[path+"@"+version]
	return e, ok
}

// Versions returns the versions of path the log holds, in log order.
func (l *Log) Versions(path string) []string {
	l.mu.Lock()
	defer l.mu.Unlock()
	var vs []string
	seen := map[string]bool{}
	for _, k := range l.order {
		p, v, _ := strings.Cut(k, "@")
		if p == path && !seen[v] {
			seen[v] = true
			vs = append(vs, v)
		}
	}
	return vs
}

// All returns every module version's latest entry, keyed by path@version.
func (l *Log) All() map[string]Entry {
	l.mu.Lock()
	defer l.mu.Unlock()
	return maps.Clone(l.entries)
}

// Head returns the current tree and its signed note (nil for a read-only
// log nothing was committed to).
func (l *Log) Head() (tlog.Tree, []byte) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.tree, l.head
}

// Append adds the record of path@version and commits a new signed head
// (see the log's files for how that is durable). It returns the record's
// index. A read-only log, or one with a Fault, refuses; ErrRaced when
// another writer committed at the same index first (Sync, then decide
// again).
func (l *Log) Append(ctx context.Context, path, version string, e Entry) (int64, error) {
	if l.signer == nil {
		return 0, errors.New("hosted log: opened read-only")
	}
	rec := formatRecord(path, version, e)
	if len(rec) > maxRecord {
		return 0, errors.New("hosted log: record too large")
	}
	l.writeMu.Lock()
	defer l.writeMu.Unlock()
	// Nothing else changes the state while writeMu is held, so it can be
	// read, committed and then installed in three steps, mu held only
	// for the first and the last.
	l.mu.Lock()
	fault, n, hashes := l.fault, int64(len(l.recs)), l.hashes
	l.mu.Unlock()
	if fault != nil {
		return 0, fmt.Errorf("hosted log: not appending to a log that cannot be verified: %w", fault)
	}
	hs, err := tlog.StoredHashes(n, rec, memHashes(hashes))
	if err != nil {
		return 0, fmt.Errorf("hosted log: %w", err)
	}
	all := append(hashes, hs...) // in place past len: no snapshot (hashReader) sees it, and l.hashes only changes on success
	th, err := tlog.TreeHash(n+1, memHashes(all))
	if err != nil {
		return 0, fmt.Errorf("hosted log: %w", err)
	}
	tree := tlog.Tree{N: n + 1, Hash: th}
	head, err := l.sign(tree)
	if err != nil {
		return 0, err
	}
	if err := l.files.commit(ctx, n, rec, hs, head); err != nil {
		return 0, err
	}
	e.Index = n
	k := path + "@" + version
	l.mu.Lock()
	l.recs = append(l.recs, rec)
	l.tree, l.head, l.hashes = tree, head, all
	l.entries[k] = e
	l.order = append(l.order, k)
	l.mu.Unlock()
	if l.seen != nil {
		if err := l.seen.check(tree, all, head); err != nil {
			return n, err // committed; the node's memory of it could not be saved
		}
	}
	l.seal(ctx)
	return n, nil
}

// records returns records id to id+n-1 of the current tree.
func (l *Log) records(id, n int64) ([][]byte, bool) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if id < 0 || n < 0 || id+n > l.tree.N || id+n > int64(len(l.recs)) {
		return nil, false
	}
	return append([][]byte(nil), l.recs[id:id+n]...), true
}

// hashReader reads the current stored hashes (a snapshot: they are only
// ever appended to).
func (l *Log) hashReader() tlog.HashReader {
	l.mu.Lock()
	hs := l.hashes
	l.mu.Unlock()
	return memHashes(hs)
}

// readAll reads the whole log from its files into a new Log value that
// only holds the state (nil with an error reading the files; with the
// verified prefix and an error wrapping ErrTampered when it does not
// verify).
func (l *Log) readAll(ctx context.Context, read func(context.Context, int64) (recs, heads [][]byte, head []byte, err error)) (*Log, error) {
	fresh := &Log{files: l.files, verifier: l.verifier, vkey: l.vkey, entries: map[string]Entry{}}
	recs, heads, head, err := read(ctx, 0)
	if err != nil {
		return nil, err
	}
	return fresh, fresh.apply(0, recs, heads, head)
}

// Check reads the whole log from its files again, independently of what
// this Log holds, and checks that its records hash to every signed head
// it has (and, in a directory, that its stored hashes are the records';
// in a shared store, that the record objects say what the segments say).
// It returns the checked tree and an error wrapping ErrTampered when they
// do not agree.
func (l *Log) Check(ctx context.Context) (tlog.Tree, error) {
	fresh, err := l.readAll(ctx, l.files.read)
	if fresh == nil {
		return tlog.Tree{}, err
	}
	if err != nil {
		return fresh.tree, err
	}
	if s, ok := l.files.(*storeFiles); ok {
		// Replicas read segments; the records they copy must verify too
		// (they are what a missing segment is read and written again from).
		whole, err := l.readAll(ctx, s.readAllRecords)
		if whole == nil {
			return fresh.tree, err
		}
		if err != nil {
			return fresh.tree, err
		}
		for i := range min(len(whole.recs), len(fresh.recs)) {
			if !bytes.Equal(whole.recs[i], fresh.recs[i]) {
				return fresh.tree, fmt.Errorf("hosted log: %w: record %d differs from its copy in a segment", ErrTampered, i)
			}
		}
		// The record objects stop at the first one missing: one missing
		// under a segment would go unseen by every replica until the
		// segment is lost, and then a writer would append a different
		// record in its place.
		if n := len(whole.recs); n < len(fresh.recs) {
			return fresh.tree, fmt.Errorf("hosted log: %w: the object of record %d is missing (a segment holds it)", ErrTampered, n)
		}
	}
	if l.seen != nil {
		if err := l.seen.consistent(fresh.tree, fresh.hashes); err != nil {
			return fresh.tree, err
		}
	}
	if d, ok := l.files.(*dirFiles); ok {
		if err := d.checkHashes(fresh.tree.N, fresh.hashes); err != nil {
			return fresh.tree, err
		}
	}
	return fresh.tree, nil
}

// Checker answers a scrub's questions about hosted objects from a log,
// the hosted patterns and the purge marks (it implements
// scrub.HostedLog).
type Checker struct {
	Patterns []Pattern
	Log      *Log
	Purged   map[string]Mark // by path@version (ReadPurges)
}

// Published lists the logged versions that are not purged, in log order.
func (c Checker) Published() []module.Version {
	var out []module.Version
	c.Log.mu.Lock()
	defer c.Log.mu.Unlock()
	seen := map[string]bool{}
	for _, k := range c.Log.order {
		if _, purged := c.Purged[k]; purged || seen[k] {
			continue
		}
		seen[k] = true
		p, v, _ := strings.Cut(k, "@")
		out = append(out, module.Version{Path: p, Version: v})
	}
	return out
}

// IsHosted reports whether path matches a hosted pattern.
func (c Checker) IsHosted(path string) bool { return MatchAny(c.Patterns, path) }

// Lookup returns the logged h1 of version's zip or (goMod) go.mod.
func (c Checker) Lookup(path, version string, goMod bool) (string, bool) {
	e, ok := c.Log.Lookup(path, version)
	if goMod {
		return e.Mod, ok
	}
	return e.Zip, ok
}
