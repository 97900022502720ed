package goenv

import (
	"bytes"
	crand "crypto/rand"
	"errors"
	"io"
	"math/rand/v2"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"testing/iotest"
	"time"

	"golang.org/x/mod/sumdb/note"
)

// testName is the checksum database name the tests look for; its keys come
// from note.GenerateKey.
const testName = "sum.test.example"

func genKey(t testing.TB, name string) string {
	t.Helper()
	_, vkey, err := note.GenerateKey(crand.Reader, name)
	if err != nil {
		t.Fatal(err)
	}
	return vkey
}

// corrupt returns vkey with the byte at i changed to another character of
// the same class, so that the shape stays right but the key does not parse.
func corrupt(vkey string, i int) string {
	b := []byte(vkey)
	switch {
	case b[i] == 'A':
		b[i] = 'B'
	case b[i] == '0':
		b[i] = '1'
	default:
		b[i] = 'A'
		if vkey[i] >= '0' && vkey[i] <= '9' || vkey[i] >= 'a' && vkey[i] <= 'f' {
			b[i] = '0'
		}
	}
	return string(b)
}

func wantNoKey(t *testing.T, err error, name string) {
	t.Helper()
	var nk *NoKeyError
	if !errors.As(err, &nk) || nk.Name != name {
		t.Fatalf("err = %v; want *NoKeyError for %q", err, name)
	}
}

func TestScanKey(t *testing.T) {
	vkey := genKey(t, testName)
	other := genKey(t, "other.test.example")
	// A name that ends with testName: "sum.test.example+" occurs inside it.
	longer := genKey(t, "x"+testName)
	hashBad := testName + "+" + corrupt(vkey[len(testName)+1:], 0) // wrong key hash
	dataBad := corrupt(vkey, len(vkey)-10)                         // right shape, key data changed
	for _, tc := range []struct {
		name string
		blob string
		want string // "" means not found
	}{
		{"alone", vkey, vkey},
		{"first of two", "\x00" + vkey + "\x00" + genKey(t, testName), vkey},
		{"not found", "\x00\x01garbage\x00" + testName + "\x00" + testName + "+", ""},
		{"empty", "", ""},
		{"short candidate at end", "\x00" + vkey[:len(vkey)-1], ""},
		{"another name only", "\x00" + other + "\x00", ""},
		{"longer name only", "\x00" + longer + "\x00", ""},
		{"corrupt then valid", testName + "+0000zzzz+notakey\x00" + hashBad + "\x00" + dataBad + "\x00" + other + "\x00more\x00" + vkey + "\x00tail", vkey},
		{"corrupt only", hashBad + "\x00" + dataBad, ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, err := scanKey(strings.NewReader(tc.blob), testName)
			if tc.want == "" {
				wantNoKey(t, err, testName)
				return
			}
			if err != nil || got != tc.want {
				t.Fatalf("scanKey = %q, %v; want %q", got, err, tc.want)
			}
		})
	}
}

// TestScanKeyInsideBadCandidate: a candidate with the right shape that does
// not verify may hide the start of the real key in its key data (possible
// for a name without dots); every "NAME+" is tried, not only the ones after
// a rejected match.
func TestScanKeyInsideBadCandidate(t *testing.T) {
	const name = "sumtest"
	vkey := genKey(t, name)
	blob := name + "+deadbeef+AAAA" + vkey + "\x00"
	got, err := scanKey(strings.NewReader(blob), name)
	if err != nil || got != vkey {
		t.Fatalf("scanKey = %q, %v; want %q", got, err, vkey)
	}
}

// TestScanKeyBoundaries puts the key at every offset around the ends of the
// first and second reads (and a stray "NAME+" just before it), through
// readers that return whole and partial reads.
func TestScanKeyBoundaries(t *testing.T) {
	vkey := genKey(t, testName)
	keyLen := len(vkey)
	first := scanBufSize
	second := 2*scanBufSize - (keyLen - 1) // the carried tail is keyLen-1 bytes
	size := 3 * scanBufSize
	for _, boundary := range []int{first, second} {
		for off := boundary - keyLen - 2; off <= boundary+2; off++ {
			blob := make([]byte, size)
			copy(blob[off-len(testName)-2:], testName+"+")
			copy(blob[off:], vkey)
			for _, r := range []struct {
				name string
				r    io.Reader
			}{
				{"whole", bytes.NewReader(blob)},
				{"half", iotest.HalfReader(bytes.NewReader(blob))},
			} {
				got, err := scanKey(r.r, testName)
				if err != nil || got != vkey {
					t.Fatalf("key at %d (boundary %d), %s reads: scanKey = %q, %v", off, boundary, r.name, got, err)
				}
			}
		}
	}
	// The very end of a file that fills whole buffers.
	blob := make([]byte, size)
	copy(blob[size-keyLen:], vkey)
	if got, err := scanKey(bytes.NewReader(blob), testName); err != nil || got != vkey {
		t.Fatalf("key at the end: scanKey = %q, %v", got, err)
	}
}

func TestScanKeyReadError(t *testing.T) {
	boom := errors.New("boom")
	_, err := scanKey(io.MultiReader(bytes.NewReader(make([]byte, 3*scanBufSize)), iotest.ErrReader(boom)), testName)
	if !errors.Is(err, boom) {
		t.Fatalf("err = %v; want boom", err)
	}
}

// writeBinary writes a fake go binary holding vkey into dir and returns
// its path.
func writeBinary(t testing.TB, dir, vkey string) string {
	t.Helper()
	p := filepath.Join(dir, "go")
	blob := append(append(make([]byte, 1000), vkey...), make([]byte, 1000)...)
	if err := os.WriteFile(p, blob, 0o755); err != nil {
		t.Fatal(err)
	}
	return p
}

// blank overwrites the file p with zeros of size bytes (so no key is in
// it) and gives it the modification time mtime.
func blank(t *testing.T, p string, size int64, mtime time.Time) {
	t.Helper()
	if err := os.WriteFile(p, make([]byte, size), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.Chtimes(p, mtime, mtime); err != nil {
		t.Fatal(err)
	}
}

func stat(t *testing.T, p string) os.FileInfo {
	t.Helper()
	fi, err := os.Stat(p)
	if err != nil {
		t.Fatal(err)
	}
	return fi
}

func TestSumDBKeyCache(t *testing.T) {
	vkey := genKey(t, testName)
	dir := t.TempDir()
	bin := writeBinary(t, dir, vkey)
	t.Setenv("PATH", dir)
	cache := filepath.Join(t.TempDir(), "state", "sumdbkey.json")

	got, err := SumDBKeyCached(testName, cache)
	if err != nil || got != vkey {
		t.Fatalf("first call = %q, %v; want %q", got, err, vkey)
	}
	fi := stat(t, bin)

	// Same path, size and mtime, but no key in the file any more: only a
	// cache hit can answer, so the binary was not read.
	blank(t, bin, fi.Size(), fi.ModTime())
	if got, err := SumDBKeyCached(testName, cache); err != nil || got != vkey {
		t.Fatalf("cached call = %q, %v; want %q", got, err, vkey)
	}
	// SumDBKey keeps no cache: it reads the (now blank) binary.
	if _, err := SumDBKey(testName); err == nil {
		t.Fatal("SumDBKey answered from a cache")
	} else {
		wantNoKey(t, err, testName)
	}
	// The cache is per name.
	if _, err := SumDBKeyCached("other.test.example", cache); err == nil {
		t.Fatal("cache answered for another name")
	} else {
		wantNoKey(t, err, "other.test.example")
	}
	entries, err := os.ReadDir(filepath.Dir(cache))
	if err != nil {
		t.Fatal(err)
	}
	if len(entries) != 1 || entries[0].Name() != filepath.Base(cache) {
		t.Fatalf("cache directory holds %v; want only the cache file", entries)
	}
}

func TestSumDBKeyCacheInvalidation(t *testing.T) {
	for _, tc := range []struct {
		name   string
		change func(t *testing.T, bin string, fi os.FileInfo)
	}{
		{"mtime", func(t *testing.T, bin string, fi os.FileInfo) {
			blank(t, bin, fi.Size(), fi.ModTime().Add(time.Second))
		}},
		{"mtime by a nanosecond", func(t *testing.T, bin string, fi os.FileInfo) {
			blank(t, bin, fi.Size(), fi.ModTime().Add(time.Nanosecond))
		}},
		{"size", func(t *testing.T, bin string, fi os.FileInfo) {
			blank(t, bin, fi.Size()+1, fi.ModTime())
		}},
		{"path", func(t *testing.T, bin string, fi os.FileInfo) {
			// Another binary at another path with the same size and mtime.
			blank(t, bin, fi.Size(), fi.ModTime())
			if err := os.Rename(bin, bin+"2"); err != nil {
				t.Fatal(err)
			}
			if err := os.Symlink(bin+"2", bin); err != nil {
				t.Fatal(err)
			}
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			vkey := genKey(t, testName)
			dir := t.TempDir()
			bin := writeBinary(t, dir, vkey)
			t.Setenv("PATH", dir)
			cache := filepath.Join(t.TempDir(), "sumdbkey.json")
			if got, err := SumDBKeyCached(testName, cache); err != nil || got != vkey {
				t.Fatalf("first call = %q, %v; want %q", got, err, vkey)
			}
			tc.change(t, bin, stat(t, bin))
			_, err := SumDBKeyCached(testName, cache)
			wantNoKey(t, err, testName)
		})
	}
}

// TestSumDBKeyCacheNotTrusted: an entry that matches the binary but whose
// key is not a valid key for the name is ignored and the binary is read.
func TestSumDBKeyCacheNotTrusted(t *testing.T) {
	vkey := genKey(t, testName)
	bin := writeBinary(t, t.TempDir(), vkey)
	fi := stat(t, bin)
	for _, bad := range []string{
		"",
		"not a key",
		corrupt(vkey, len(vkey)-10),
		genKey(t, "other.test.example"),
		genKey(t, "x"+testName)[1:], // "NAME+HASH+DATA" with another name's hash
	} {
		cache := filepath.Join(t.TempDir(), "sumdbkey.json")
		if err := writeCache(cache, newCacheEntry(bin, testName, bad, fi)); err != nil {
			t.Fatal(err)
		}
		if got, err := binaryKey(bin, testName, cache); err != nil || got != vkey {
			t.Fatalf("cache with key %q: binaryKey = %q, %v; want %q", bad, got, err, vkey)
		}
	}
	for _, junk := range []string{"", "{", "null", `{"binary":1}`, strings.Repeat(" ", maxCacheFile) + "{}"} {
		cache := filepath.Join(t.TempDir(), "sumdbkey.json")
		if err := os.WriteFile(cache, []byte(junk), 0o644); err != nil {
			t.Fatal(err)
		}
		if got, err := binaryKey(bin, testName, cache); err != nil || got != vkey {
			t.Fatalf("cache %.20q: binaryKey = %q, %v; want %q", junk, got, err, vkey)
		}
	}
}

// TestSumDBKeyCacheUnwritable: a cache that cannot be written does not
// make the call fail.
func TestSumDBKeyCacheUnwritable(t *testing.T) {
	vkey := genKey(t, testName)
	bin := writeBinary(t, t.TempDir(), vkey)
	notDir := filepath.Join(t.TempDir(), "file")
	if err := os.WriteFile(notDir, nil, 0o644); err != nil {
		t.Fatal(err)
	}
	if got, err := binaryKey(bin, testName, filepath.Join(notDir, "sumdbkey.json")); err != nil || got != vkey {
		t.Fatalf("binaryKey = %q, %v; want %q", got, err, vkey)
	}
}

func TestSumDBKeyNoGo(t *testing.T) {
	t.Setenv("PATH", t.TempDir())
	if _, err := SumDBKey(testName); err == nil {
		t.Fatal("SumDBKey without a go command succeeded")
	}
	if _, err := binaryKey(filepath.Join(t.TempDir(), "missing"), testName, ""); !errors.Is(err, os.ErrNotExist) {
		t.Fatalf("binaryKey(missing) = %v; want not exist", err)
	}
}

// oldSumDBKey is the implementation SumDBKey replaced (the whole binary in
// memory, then a regexp), kept to compare allocations in the benchmark.
func oldSumDBKey(goBin, name string) (string, error) {
	data, err := os.ReadFile(goBin)
	if err != nil {
		return "", err
	}
	re := regexp.MustCompile(regexp.QuoteMeta(name) + `\+[0-9a-f]{8}\+[A-Za-z0-9+/]{44}`)
	for _, m := range re.FindAll(data, -1) {
		v, err := note.NewVerifier(string(m))
		if err == nil && v.Name() == name && bytes.HasPrefix(m, []byte(name+"+")) {
			return string(m), nil
		}
	}
	return "", &NoKeyError{Name: name}
}

// BenchmarkSumDBKey reads the key from a synthetic 64 MiB binary (random
// bytes with a few stray "NAME+" and the key near the end): the old
// implementation, the streaming one, and a cache hit.
func BenchmarkSumDBKey(b *testing.B) {
	const size = 64 << 20
	vkey := genKey(b, testName)
	blob := make([]byte, size)
	rng := rand.NewChaCha8([32]byte{1})
	if _, err := rng.Read(blob); err != nil {
		b.Fatal(err)
	}
	for i := 1; i < 16; i++ {
		copy(blob[i*size/16:], testName+"+")
	}
	copy(blob[size-4096:], vkey)
	bin := filepath.Join(b.TempDir(), "go")
	if err := os.WriteFile(bin, blob, 0o755); err != nil {
		b.Fatal(err)
	}
	blob = nil
	cache := filepath.Join(b.TempDir(), "sumdbkey.json")
	for _, bc := range []struct {
		name  string
		bytes int64 // read from the binary per call
		f     func() (string, error)
	}{
		{"old=readfile+regexp", size, func() (string, error) { return oldSumDBKey(bin, testName) }},
		{"stream", size, func() (string, error) { return binaryKey(bin, testName, "") }},
		{"cached", 0, func() (string, error) { return binaryKey(bin, testName, cache) }},
	} {
		b.Run(bc.name, func(b *testing.B) {
			b.SetBytes(bc.bytes)
			b.ReportAllocs()
			for b.Loop() {
				got, err := bc.f()
				if err != nil || got != vkey {
					b.Fatalf("got %q, %v", got, err)
				}
			}
		})
	}
}
