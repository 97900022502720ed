package goenv

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"

	"golang.org/x/mod/sumdb/note"

	"github.com/modproxy/modproxy/internal/atomicfile"
)

// SumDBKey returns the verifier key that the go command has built in for
// the checksum database name (GOSUMDB may name a database without its key
// only when the go command knows the key). It reads the go binary found in
// PATH and looks for "NAME+HASH+KEYDATA" whose key parses and names the
// database, so modproxy never carries a copy of a public key of its own.
//
// The binary is streamed through a fixed-size buffer: memory use does not
// depend on its size. SumDBKey keeps no cache; SumDBKeyCached does. When the
// go command has no key for name the error is a *NoKeyError.
func SumDBKey(name string) (string, error) {
	return SumDBKeyCached(name, "")
}

// SumDBKeyCached is SumDBKey with a cache of its answer in the file
// cacheFile ("" means no cache), so that a later call does not read the go
// binary at all. An entry is used only when the go binary has the same
// resolved path, size and modification time as when it was read, and the
// cached key still parses as a verifier key for name; otherwise the binary
// is read again. The cache is best effort: one that cannot be read is
// ignored and one that cannot be written is left as it was. It is replaced
// atomically (temporary file, then rename), so concurrent callers and
// crashes leave either the old entry or the new one.
func SumDBKeyCached(name, cacheFile string) (string, error) {
	goBin, err := exec.LookPath("go")
	if err != nil {
		return "", fmt.Errorf("finding the go command: %w", err)
	}
	if p, err := filepath.EvalSymlinks(goBin); err == nil {
		goBin = p
	}
	return binaryKey(goBin, name, cacheFile)
}

// NoKeyError reports that the go command has no built-in key for the
// checksum database Name.
type NoKeyError struct{ Name string }

func (e *NoKeyError) Error() string {
	return fmt.Sprintf("the go command has no built-in key for checksum database %q; give it as NAME+KEY", e.Name)
}

// binaryKey returns the key for name found in the file goBin, through the
// cache in cacheFile when it is not "".
func binaryKey(goBin, name, cacheFile string) (string, error) {
	if cacheFile != "" {
		if key, ok := cachedKey(cacheFile, goBin, name); ok {
			return key, nil
		}
	}
	f, err := os.Open(goBin)
	if err != nil {
		return "", err
	}
	defer f.Close()
	before, err := f.Stat()
	if err != nil {
		return "", err
	}
	key, err := scanKey(f, name)
	if err != nil {
		return "", err
	}
	if cacheFile != "" {
		// Only a binary that did not change while it was read is worth
		// remembering; its stat comes from the open file, so a binary
		// replaced by rename after Open is not mistaken for the one read.
		if after, err := f.Stat(); err == nil && sameFile(before, after) {
			_ = writeCache(cacheFile, newCacheEntry(goBin, name, key, after))
		}
	}
	return key, nil
}

// scanBufSize is the size of the buffer scanKey reads through.
const scanBufSize = 128 << 10

// scanKey returns the first "NAME+HASH+KEYDATA" in r whose key parses as a
// verifier key for name, reading r through a buffer of fixed size. The end
// of each buffer (one key's length less a byte) is carried over to the next,
// so a key split between two reads is found. Every occurrence of "NAME+" is
// a candidate, including one inside an earlier candidate that failed.
func scanKey(r io.Reader, name string) (string, error) {
	prefix := []byte(name + "+")
	keyLen := len(name) + 1 + 8 + 1 + 44
	buf := make([]byte, max(scanBufSize, 2*keyLen))
	n := 0 // bytes in buf
	for {
		m, err := io.ReadFull(r, buf[n:])
		n += m
		eof := errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF)
		if err != nil && !eof {
			return "", err
		}
		// Every candidate that starts at or before last lies wholly in
		// buf[:n]; the ones after it are looked at after the next read.
		last := n - keyLen
		for i := 0; i <= last; {
			j := bytes.Index(buf[i:n], prefix)
			if j < 0 || i+j > last {
				break
			}
			i += j
			if c := buf[i : i+keyLen]; validKey(c, name) {
				return string(c), nil
			}
			i++
		}
		if eof {
			return "", &NoKeyError{Name: name}
		}
		// keep = keyLen-1 > 0 and n = len(buf) >= 2*keyLen, so the kept
		// tail leaves room for the next read.
		keep := keyLen - 1
		n = copy(buf, buf[n-keep:n])
	}
}

// validKey reports whether c is "NAME+HASH+KEYDATA" (HASH eight lower-case
// hex digits, KEYDATA 44 base64 characters) and parses as a verifier key
// named name. The shape is checked first: it is cheap and rules out almost
// every stray "NAME+" in a binary before any decoding.
func validKey(c []byte, name string) bool {
	if len(c) != len(name)+54 || !bytes.HasPrefix(c, []byte(name+"+")) {
		return false
	}
	rest := c[len(name)+1:]
	for _, b := range rest[:8] {
		if !('0' <= b && b <= '9' || 'a' <= b && b <= 'f') {
			return false
		}
	}
	if rest[8] != '+' {
		return false
	}
	for _, b := range rest[9:] {
		if !('A' <= b && b <= 'Z' || 'a' <= b && b <= 'z' || '0' <= b && b <= '9' || b == '+' || b == '/') {
			return false
		}
	}
	v, err := note.NewVerifier(string(c))
	return err == nil && v.Name() == name
}

// cacheEntry is the content of a SumDBKeyCached cache file: the key found
// for Name in the go binary Binary, which had Size and ModTime (Unix
// nanoseconds) when it was read. It is comparable: cachedKey uses ==.
type cacheEntry struct {
	Binary  string `json:"binary"`
	Size    int64  `json:"size"`
	ModTime int64  `json:"mtime_ns"`
	Name    string `json:"name"`
	Key     string `json:"key"`
}

func newCacheEntry(goBin, name, key string, fi os.FileInfo) cacheEntry {
	return cacheEntry{Binary: goBin, Size: fi.Size(), ModTime: fi.ModTime().UnixNano(), Name: name, Key: key}
}

func sameFile(a, b os.FileInfo) bool {
	return a.Size() == b.Size() && a.ModTime().Equal(b.ModTime()) && os.SameFile(a, b)
}

// maxCacheFile bounds what cachedKey reads: an entry is a few hundred bytes.
const maxCacheFile = 16 << 10

// cachedKey returns the key cached in cacheFile for name and the go binary
// goBin as it is now, if there is one and it is still a valid key for name.
func cachedKey(cacheFile, goBin, name string) (string, bool) {
	fi, err := os.Stat(goBin)
	if err != nil {
		return "", false
	}
	f, err := os.Open(cacheFile)
	if err != nil {
		return "", false
	}
	defer f.Close()
	data, err := io.ReadAll(io.LimitReader(f, maxCacheFile))
	if err != nil {
		return "", false
	}
	var e cacheEntry
	if err := json.Unmarshal(data, &e); err != nil {
		return "", false
	}
	want := newCacheEntry(goBin, name, e.Key, fi)
	if e != want || !validKey([]byte(e.Key), name) {
		return "", false
	}
	return e.Key, true
}

// writeCache replaces cacheFile with e durably (internal/atomicfile).
func writeCache(cacheFile string, e cacheEntry) error {
	data, err := json.Marshal(e)
	if err != nil {
		return err
	}
	return atomicfile.Write(cacheFile, data, 0o644)
}
