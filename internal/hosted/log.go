package hosted

import (
	"bytes"
	"crypto/rand"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"maps"
	"os"
	"path/filepath"
	"strings"
	"sync"

	"golang.org/x/mod/module"
	"golang.org/x/mod/sumdb/note"
	"golang.org/x/mod/sumdb/tlog"

	"github.com/modproxy/modproxy/internal/atomicfile"
)

// LogName is the name of the private log's signing key (the first element
// of its signed tree heads' signature lines).
const LogName = "modproxy-hosted"

// Files of a log directory.
const (
	keyFile     = "key"     // the signer key (note.GenerateKey), mode 0600
	pubFile     = "key.pub" // the verifier key
	recordsFile = "records" // record texts, concatenated
	offsetsFile = "offsets" // the end offset in records of record i, 8 bytes big-endian, at 8*i
	hashesFile  = "hashes"  // tlog stored hashes, 32 bytes each, at 32*index
	headFile    = "head"    // the signed tree head (a note of tlog.FormatTree): the commit point
)

// maxRecord bounds one record (two go.sum lines).
const maxRecord = 4096

// Entry is what the log says about one module version: the h1 hashes of
// its zip and its go.mod, and the record's index in the log.
type Entry struct {
	Index int64
	Zip   string // "h1:..." of the zip
	Mod   string // "h1:..." of the go.mod
}

// Log is the private transparency log of hosted versions, on
// golang.org/x/mod/sumdb/tlog: each record is a version's two go.sum lines
// ("PATH VERSION h1:..." and "PATH VERSION/go.mod h1:..."), as the public
// checksum database's records are, and every append is sealed by a tree
// head signed with the server's key (golang.org/x/mod/sumdb/note).
//
// Durability: an append writes the record, its end offset and its stored
// hashes at the positions the current size gives and syncs them; then it
// writes the new signed tree head with atomicfile (temp file, fsync,
// rename, directory fsync). The head is the commit point: a process killed
// before the rename leaves the old head, and the bytes written past it are
// ignored by readers (which read only up to the head's size) and truncated
// by the next writer's Open. A process killed after it leaves the new
// head with every byte it covers synced. So after kill -9 the log is the
// state of the last completed append, never a torn one.
//
// One process writes a log (the server, which Opens it writable); others
// (modproxy verify) open it read-only while it runs. A Log is safe for
// concurrent use.
type Log struct {
	dir      string
	writable bool
	signer   note.Signer // nil when read-only
	verifier note.Verifier

	mu      sync.Mutex
	tree    tlog.Tree
	head    []byte // the signed note of tree
	end     int64  // records' size at tree.N
	entries map[string]Entry
	order   []string // path@version of each record, in log order (for Versions)
}

// OpenLog opens the log in dir. Writable creates dir and the signing key
// when missing (the key is generated once, mode 0600, and never logged)
// and truncates bytes a killed append left past the head. Read-only needs
// an existing key and head, and never writes.
func OpenLog(dir string, writable bool) (*Log, error) {
	l := &Log{dir: dir, writable: writable, entries: map[string]Entry{}}
	if writable {
		if err := os.MkdirAll(dir, 0o700); err != nil {
			return nil, fmt.Errorf("hosted log: %w", err)
		}
		if err := l.ensureKey(); err != nil {
			return nil, err
		}
	}
	vkey, err := atomicfile.Read(filepath.Join(dir, pubFile), 4096)
	if err != nil {
		return nil, fmt.Errorf("hosted log: verifier key: %w", err)
	}
	if l.verifier, err = note.NewVerifier(strings.TrimSpace(string(vkey))); err != nil {
		return nil, fmt.Errorf("hosted log: verifier key: %w", err)
	}
	if writable {
		skey, err := atomicfile.Read(filepath.Join(dir, keyFile), 4096)
		if err != nil {
			return nil, fmt.Errorf("hosted log: signer key: %w", err)
		}
		if l.signer, err = note.NewSigner(strings.TrimSpace(string(skey))); err != nil {
			return nil, fmt.Errorf("hosted log: signer key: %w", err)
		}
	}
	if err := l.load(); err != nil {
		return nil, err
	}
	return l, nil
}

// ensureKey generates the key pair when there is none.
func (l *Log) ensureKey() error {
	if _, err := os.Stat(filepath.Join(l.dir, keyFile)); err == nil {
		return nil
	} else if !errors.Is(err, fs.ErrNotExist) {
		return fmt.Errorf("hosted log: %w", err)
	}
	skey, vkey, err := note.GenerateKey(rand.Reader, LogName)
	if err != nil {
		return fmt.Errorf("hosted log: generating the key: %w", err)
	}
	// The public half first: a crash between the two leaves no private key,
	// and the next start generates a new pair.
	if err := atomicfile.Write(filepath.Join(l.dir, pubFile), []byte(vkey+"\n"), 0o644); err != nil {
		return fmt.Errorf("hosted log: %w", err)
	}
	if err := atomicfile.Write(filepath.Join(l.dir, keyFile), []byte(skey+"\n"), 0o600); err != nil {
		return fmt.Errorf("hosted log: %w", err)
	}
	return nil
}

// VerifierKey returns the log's public key (note verifier key syntax).
func (l *Log) VerifierKey() string {
	b, _ := os.ReadFile(filepath.Join(l.dir, pubFile))
	return strings.TrimSpace(string(b))
}

// load reads the head and every record it covers.
func (l *Log) load() error {
	head, err := os.ReadFile(filepath.Join(l.dir, headFile))
	switch {
	case errors.Is(err, fs.ErrNotExist) && l.writable:
		l.tree = tlog.Tree{}
		if l.head, err = l.sign(l.tree); err != nil {
			return err
		}
		if err := atomicfile.Write(filepath.Join(l.dir, headFile), l.head, 0o644); err != nil {
			return fmt.Errorf("hosted log: %w", err)
		}
	case err != nil:
		return fmt.Errorf("hosted log: head: %w", err)
	default:
		if l.tree, err = l.openHead(head); err != nil {
			return err
		}
		l.head = head
	}
	n := l.tree.N
	offs, err := readAt(filepath.Join(l.dir, offsetsFile), 0, 8*n)
	if err != nil {
		return fmt.Errorf("hosted log: offsets: %w", err)
	}
	if n > 0 {
		l.end = int64(binary.BigEndian.Uint64(offs[8*(n-1):]))
	}
	recs, err := readAt(filepath.Join(l.dir, recordsFile), 0, l.end)
	if err != nil {
		return fmt.Errorf("hosted log: records: %w", err)
	}
	var start int64
	for i := range n {
		end := int64(binary.BigEndian.Uint64(offs[8*i:]))
		if end < start || end > int64(len(recs)) {
			return fmt.Errorf("hosted log: record %d: bad offset %d", i, end)
		}
		if err := l.index(i, recs[start:end]); err != nil {
			return err
		}
		start = end
	}
	if l.writable {
		for name, size := range map[string]int64{recordsFile: l.end, offsetsFile: 8 * n, hashesFile: 32 * tlog.StoredHashCount(n)} {
			if err := truncate(filepath.Join(l.dir, name), size); err != nil {
				return fmt.Errorf("hosted log: %w", err)
			}
		}
	}
	return nil
}

// index records record i in the lookup map; a later record of the same
// version (a re-publish a purge allowed) supersedes an earlier one.
func (l *Log) index(i int64, rec []byte) error {
	path, version, e, err := parseRecord(rec)
	if err != nil {
		return fmt.Errorf("hosted log: record %d: %w", i, err)
	}
	e.Index = i
	k := path + "@" + version
	l.entries[k] = e
	l.order = append(l.order, k)
	return nil
}

// openHead verifies the signature of a head and parses its tree.
func (l *Log) openHead(msg []byte) (tlog.Tree, error) {
	n, err := note.Open(msg, note.VerifierList(l.verifier))
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

// formatRecord is a record: the version's go.sum lines.
func formatRecord(path, version string, e Entry) []byte {
	return fmt.Appendf(nil, "%s %s %s\n%s %s/go.mod %s\n", path, version, e.Zip, path, version, e.Mod)
}

func parseRecord(rec []byte) (path, version string, e Entry, err error) {
	lines := strings.Split(strings.TrimSuffix(string(rec), "\n"), "\n")
	if len(lines) != 2 {
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

// Head returns the current tree and its signed note.
func (l *Log) Head() (tlog.Tree, []byte) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.tree, l.head
}

// Append adds the record of path@version and commits a new signed head;
// see Log for the durability argument. It returns the record's index.
func (l *Log) Append(path, version string, e Entry) (int64, error) {
	if !l.writable {
		return 0, errors.New("hosted log: opened read-only")
	}
	rec := formatRecord(path, version, e)
	if len(rec) > maxRecord {
		return 0, errors.New("hosted log: record too large")
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	n := l.tree.N
	hashes, err := tlog.StoredHashes(n, rec, l.hashReader())
	if err != nil {
		return 0, fmt.Errorf("hosted log: %w", err)
	}
	var hb []byte
	for _, h := range hashes {
		hb = append(hb, h[:]...)
	}
	end := l.end + int64(len(rec))
	if err := writeAt(filepath.Join(l.dir, recordsFile), l.end, rec); err != nil {
		return 0, err
	}
	if err := writeAt(filepath.Join(l.dir, offsetsFile), 8*n, binary.BigEndian.AppendUint64(nil, uint64(end))); err != nil {
		return 0, err
	}
	if err := writeAt(filepath.Join(l.dir, hashesFile), 32*tlog.StoredHashIndex(0, n), hb); err != nil {
		return 0, err
	}
	th, err := tlog.TreeHash(n+1, l.hashReader())
	if err != nil {
		return 0, fmt.Errorf("hosted log: %w", err)
	}
	tree := tlog.Tree{N: n + 1, Hash: th}
	head, err := l.sign(tree)
	if err != nil {
		return 0, err
	}
	if err := atomicfile.Write(filepath.Join(l.dir, headFile), head, 0o644); err != nil {
		return 0, fmt.Errorf("hosted log: %w", err)
	}
	l.tree, l.head, l.end = tree, head, end
	e.Index = n
	k := path + "@" + version
	l.entries[k] = e
	l.order = append(l.order, k)
	return n, nil
}

// hashReader reads stored hashes from the hashes file.
func (l *Log) hashReader() tlog.HashReader {
	return tlog.HashReaderFunc(func(idx []int64) ([]tlog.Hash, error) {
		if len(idx) == 0 {
			return nil, nil
		}
		f, err := os.Open(filepath.Join(l.dir, hashesFile))
		if err != nil {
			return nil, err
		}
		defer f.Close()
		out := make([]tlog.Hash, len(idx))
		for i, x := range idx {
			if _, err := f.ReadAt(out[i][:], 32*x); err != nil {
				return nil, fmt.Errorf("stored hash %d: %w", x, err)
			}
		}
		return out, nil
	})
}

// Check recomputes the tree from the records alone and compares it with
// the signed head (whose signature Open verified): a record or stored
// hash changed after it was appended makes it fail. It returns the
// checked tree.
func (l *Log) Check() (tlog.Tree, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	n := l.tree.N
	offs, err := readAt(filepath.Join(l.dir, offsetsFile), 0, 8*n)
	if err != nil {
		return l.tree, fmt.Errorf("hosted log: offsets: %w", err)
	}
	recs, err := readAt(filepath.Join(l.dir, recordsFile), 0, l.end)
	if err != nil {
		return l.tree, fmt.Errorf("hosted log: records: %w", err)
	}
	var mem []tlog.Hash
	r := tlog.HashReaderFunc(func(idx []int64) ([]tlog.Hash, error) {
		out := make([]tlog.Hash, len(idx))
		for i, x := range idx {
			if x >= int64(len(mem)) {
				return nil, fmt.Errorf("stored hash %d missing", x)
			}
			out[i] = mem[x]
		}
		return out, nil
	})
	var start int64
	for i := range n {
		end := int64(binary.BigEndian.Uint64(offs[8*i:]))
		if end < start || end > int64(len(recs)) {
			return l.tree, fmt.Errorf("hosted log: record %d: bad offset", i)
		}
		hs, err := tlog.StoredHashes(i, recs[start:end], r)
		if err != nil {
			return l.tree, fmt.Errorf("hosted log: %w", err)
		}
		mem = append(mem, hs...)
		start = end
	}
	th, err := tlog.TreeHash(n, r)
	if err != nil {
		return l.tree, fmt.Errorf("hosted log: %w", err)
	}
	if th != l.tree.Hash {
		return l.tree, fmt.Errorf("hosted log: %w: the records do not hash to the signed tree head (size %d)", ErrTampered, n)
	}
	stored, err := readAt(filepath.Join(l.dir, hashesFile), 0, 32*int64(len(mem)))
	if err != nil {
		return l.tree, fmt.Errorf("hosted log: hashes: %w", err)
	}
	for i, h := range mem {
		if !bytes.Equal(stored[32*i:32*i+32], h[:]) {
			return l.tree, fmt.Errorf("hosted log: %w: stored hash %d differs from the records'", ErrTampered, i)
		}
	}
	return l.tree, nil
}

// ErrTampered is wrapped by Check's errors when the log's files do not
// agree with its signed head.
var ErrTampered = errors.New("log tampered with")

// readAt reads n bytes of the file at off; a missing file reads as empty
// when n is 0.
func readAt(path string, off, n int64) ([]byte, error) {
	if n == 0 {
		return nil, nil
	}
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	b := make([]byte, n)
	if _, err := f.ReadAt(b, off); err != nil {
		if errors.Is(err, io.EOF) {
			err = io.ErrUnexpectedEOF
		}
		return nil, err
	}
	return b, nil
}

// writeAt writes b at off in path (created 0644) and syncs the file.
func writeAt(path string, off int64, b []byte) error {
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE, 0o644)
	if err != nil {
		return fmt.Errorf("hosted log: %w", err)
	}
	if _, err := f.WriteAt(b, off); err != nil {
		f.Close()
		return fmt.Errorf("hosted log: %w", err)
	}
	if err := f.Sync(); err != nil {
		f.Close()
		return fmt.Errorf("hosted log: %w", err)
	}
	if err := f.Close(); err != nil {
		return fmt.Errorf("hosted log: %w", err)
	}
	return nil
}

// truncate cuts path to size when it is longer (a killed append's tail).
func truncate(path string, size int64) error {
	fi, err := os.Stat(path)
	if errors.Is(err, fs.ErrNotExist) {
		return nil
	}
	if err != nil {
		return err
	}
	if fi.Size() > size {
		return os.Truncate(path, size)
	}
	return nil
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
