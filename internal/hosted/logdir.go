package hosted

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"strings"

	"golang.org/x/mod/sumdb/note"
	"golang.org/x/mod/sumdb/tlog"

	"github.com/modproxy/modproxy/internal/atomicfile"
)

// Files of a log directory.
const (
	keyFile     = "key"     // the signer key (note.GenerateKey), mode 0600
	pubFile     = "key.pub" // the verifier key
	recordsFile = "records" // record texts, concatenated
	offsetsFile = "offsets" // the end offset in records of record i, 8 bytes big-endian, at 8*i
	hashesFile  = "hashes"  // tlog stored hashes, 32 bytes each, at 32*index
	headFile    = "head"    // the signed tree head (a note of tlog.FormatTree): the commit point
)

// dirFiles keeps a log in a directory of one node.
//
// Durability: a commit writes the record, its end offset and its stored
// hashes at the positions the current size gives and syncs them; then it
// writes the new signed tree head with atomicfile (temp file, fsync,
// rename, directory fsync). The head is the commit point: a process killed
// before the rename leaves the old head, and the bytes written past it are
// ignored by readers (which read only up to the head's size) and truncated
// by the next writer's OpenLog. A process killed after it leaves the new
// head with every byte it covers synced. So after kill -9 the log is the
// state of the last completed append, never a torn one.
type dirFiles struct{ dir string }

// OpenLog opens the log in dir. Writable creates dir and, when key is
// empty, the signing key when missing (generated once, mode 0600, never
// logged), and truncates bytes a killed append left past the head.
// Read-only needs an existing head (and, when key is empty, the key files)
// and never writes. key, when set, is the signer key from configuration
// (see ParseKey); a read-only log needs only its verifier half.
func OpenLog(dir string, writable bool, key string) (*Log, error) {
	d := &dirFiles{dir: dir}
	if writable {
		if err := os.MkdirAll(dir, 0o700); err != nil {
			return nil, fmt.Errorf("hosted log: %w", err)
		}
		if key == "" {
			if err := d.ensureKey(); err != nil {
				return nil, err
			}
		}
	}
	var (
		signer note.Signer
		vkey   string
		err    error
	)
	if key != "" {
		if signer, vkey, err = ParseKey(key); err != nil {
			return nil, err
		}
	} else {
		b, err := atomicfile.Read(filepath.Join(dir, pubFile), 4096)
		if err != nil {
			return nil, fmt.Errorf("hosted log: verifier key: %w", err)
		}
		vkey = strings.TrimSpace(string(b))
		if writable {
			skey, err := atomicfile.Read(filepath.Join(dir, keyFile), 4096)
			if err != nil {
				return nil, fmt.Errorf("hosted log: signer key: %w", err)
			}
			if signer, err = note.NewSigner(strings.TrimSpace(string(skey))); err != nil {
				return nil, fmt.Errorf("hosted log: signer key: %w", err)
			}
		}
	}
	if !writable {
		signer = nil
		if _, err := os.Stat(filepath.Join(dir, headFile)); err != nil {
			return nil, fmt.Errorf("hosted log: head: %w", err)
		}
	}
	l, err := newLog(context.Background(), d, signer, vkey, nil)
	if err != nil {
		return nil, err
	}
	if writable {
		tree, head := l.Head()
		if err := d.truncate(tree.N); err != nil {
			return nil, err
		}
		if tree.N == 0 {
			if _, err := os.Stat(filepath.Join(dir, headFile)); errors.Is(err, fs.ErrNotExist) {
				if err := atomicfile.Write(filepath.Join(dir, headFile), head, 0o644); err != nil {
					return nil, fmt.Errorf("hosted log: %w", err)
				}
			}
		}
	}
	return l, nil
}

// ensureKey generates the key pair when there is none.
func (d *dirFiles) ensureKey() error {
	if _, err := os.Stat(filepath.Join(d.dir, keyFile)); err == nil {
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
	if err := atomicfile.Write(filepath.Join(d.dir, pubFile), []byte(vkey+"\n"), 0o644); err != nil {
		return fmt.Errorf("hosted log: %w", err)
	}
	if err := atomicfile.Write(filepath.Join(d.dir, keyFile), []byte(skey+"\n"), 0o600); err != nil {
		return fmt.Errorf("hosted log: %w", err)
	}
	return nil
}

func (d *dirFiles) read(_ context.Context, from int64) (recs, heads [][]byte, head []byte, err error) {
	head, err = os.ReadFile(filepath.Join(d.dir, headFile))
	if errors.Is(err, fs.ErrNotExist) {
		return nil, nil, nil, nil
	}
	if err != nil {
		return nil, nil, nil, fmt.Errorf("hosted log: head: %w", err)
	}
	// The size is read from the head before its signature is checked (by
	// the caller): a bad head fails there, whatever it claims.
	n, err := headSize(head)
	if err != nil {
		return nil, nil, nil, err
	}
	offs, err := readAt(filepath.Join(d.dir, offsetsFile), 0, 8*n)
	if err != nil {
		return nil, nil, nil, fmt.Errorf("hosted log: offsets: %w", err)
	}
	var end int64
	if n > 0 {
		end = int64(binary.BigEndian.Uint64(offs[8*(n-1):]))
	}
	if end < 0 || end > maxRecord*n {
		return nil, nil, nil, fmt.Errorf("hosted log: %w: bad offset %d", ErrTampered, end)
	}
	data, err := readAt(filepath.Join(d.dir, recordsFile), 0, end)
	if err != nil {
		return nil, nil, nil, fmt.Errorf("hosted log: records: %w", err)
	}
	var start int64
	for i := range n {
		e := int64(binary.BigEndian.Uint64(offs[8*i:]))
		if e < start || e > int64(len(data)) {
			return nil, nil, nil, fmt.Errorf("hosted log: %w: record %d: bad offset %d", ErrTampered, i, e)
		}
		if i >= from {
			recs = append(recs, data[start:e])
		}
		start = e
	}
	return recs, nil, head, nil
}

// headSize returns the tree size a head's text claims.
func headSize(head []byte) (int64, error) {
	text, _, ok := bytes.Cut(head, []byte("\n\n"))
	if !ok {
		return 0, fmt.Errorf("hosted log: head: not a signed note")
	}
	t, err := tlog.ParseTree(append(text, '\n'))
	if err != nil {
		return 0, fmt.Errorf("hosted log: head: %w", err)
	}
	return t.N, nil
}

func (d *dirFiles) commit(_ context.Context, n int64, rec []byte, hashes []tlog.Hash, head []byte) error {
	var end int64
	if n > 0 {
		b, err := readAt(filepath.Join(d.dir, offsetsFile), 8*(n-1), 8)
		if err != nil {
			return fmt.Errorf("hosted log: offsets: %w", err)
		}
		end = int64(binary.BigEndian.Uint64(b))
	}
	var hb []byte
	for _, h := range hashes {
		hb = append(hb, h[:]...)
	}
	if err := writeAt(filepath.Join(d.dir, recordsFile), end, rec); err != nil {
		return err
	}
	if err := writeAt(filepath.Join(d.dir, offsetsFile), 8*n, binary.BigEndian.AppendUint64(nil, uint64(end+int64(len(rec))))); err != nil {
		return err
	}
	if err := writeAt(filepath.Join(d.dir, hashesFile), 32*tlog.StoredHashIndex(0, n), hb); err != nil {
		return err
	}
	if err := atomicfile.Write(filepath.Join(d.dir, headFile), head, 0o644); err != nil {
		return fmt.Errorf("hosted log: %w", err)
	}
	return nil
}

// truncate cuts the files to what a log of n records covers (a killed
// append's tail).
func (d *dirFiles) truncate(n int64) error {
	var end int64
	if n > 0 {
		b, err := readAt(filepath.Join(d.dir, offsetsFile), 8*(n-1), 8)
		if err != nil {
			return fmt.Errorf("hosted log: offsets: %w", err)
		}
		end = int64(binary.BigEndian.Uint64(b))
	}
	for name, size := range map[string]int64{recordsFile: end, offsetsFile: 8 * n, hashesFile: 32 * tlog.StoredHashCount(n)} {
		if err := truncate(filepath.Join(d.dir, name), size); err != nil {
			return fmt.Errorf("hosted log: %w", err)
		}
	}
	return nil
}

// checkHashes compares the stored hashes file with hashes recomputed from
// the records.
func (d *dirFiles) checkHashes(n int64, hashes []tlog.Hash) error {
	stored, err := readAt(filepath.Join(d.dir, hashesFile), 0, 32*int64(len(hashes)))
	if err != nil {
		return fmt.Errorf("hosted log: hashes: %w", err)
	}
	for i, h := range hashes {
		if !bytes.Equal(stored[32*i:32*i+32], h[:]) {
			return fmt.Errorf("hosted log: %w: stored hash %d differs from the records' (size %d)", ErrTampered, i, n)
		}
	}
	return nil
}

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
	if fi, err := f.Stat(); err != nil {
		return nil, err
	} else if off < 0 || n < 0 || fi.Size() < off+n {
		return nil, io.ErrUnexpectedEOF // before allocating what a forged head may claim
	}
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
