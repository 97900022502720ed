package checksum

import (
	"archive/zip"
	"bytes"
	"fmt"
	"io"
	"math/rand/v2"
	"os"
	"path/filepath"
	"testing"

	"golang.org/x/mod/sumdb/dirhash"
)

// writeZip writes a module zip of n files of pseudo-random sizes (some
// larger than the read-ahead window) and returns its path.
func writeZip(t testing.TB, n int) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), "m.zip")
	f, err := os.Create(p)
	if err != nil {
		t.Fatal(err)
	}
	zw := zip.NewWriter(f)
	rng := rand.New(rand.NewPCG(1, 2))
	for i := range n {
		w, err := zw.Create(fmt.Sprintf("example.com/m@v1.0.0/f%03d.go", i))
		if err != nil {
			t.Fatal(err)
		}
		size := rng.IntN(3 * readAheadSize)
		data := make([]byte, size)
		for j := range data {
			data[j] = byte('a' + rng.IntN(4)) // compressible, not trivially
		}
		if _, err := w.Write(data); err != nil {
			t.Fatal(err)
		}
	}
	if err := zw.Close(); err != nil {
		t.Fatal(err)
	}
	if err := f.Close(); err != nil {
		t.Fatal(err)
	}
	return p
}

// TestHashZipFileMatchesDirhash: the read-ahead hash is dirhash.HashZip's.
func TestHashZipFileMatchesDirhash(t *testing.T) {
	for _, n := range []int{0, 1, 7, 40} {
		p := writeZip(t, n)
		want, err := dirhash.HashZip(p, dirhash.Hash1)
		if err != nil {
			t.Fatal(err)
		}
		got, err := HashZipFile(p)
		if err != nil {
			t.Fatal(err)
		}
		if got != want {
			t.Errorf("%d files: HashZipFile %s, dirhash.HashZip %s", n, got, want)
		}
	}
}

// TestHashZipFileDamaged: a flipped byte in an entry's data fails its
// CRC-32 or inflate, a truncated zip is not a zip, as with dirhash.
func TestHashZipFileDamaged(t *testing.T) {
	p := writeZip(t, 5)
	data, err := os.ReadFile(p)
	if err != nil {
		t.Fatal(err)
	}
	flipped := bytes.Clone(data)
	flipped[len(data)/3] ^= 0x40
	trunc := data[:len(data)-100]
	for name, b := range map[string][]byte{"flipped": flipped, "truncated": trunc} {
		q := filepath.Join(t.TempDir(), name+".zip")
		if err := os.WriteFile(q, b, 0o644); err != nil {
			t.Fatal(err)
		}
		if h, err := HashZipFile(q); err == nil {
			t.Errorf("%s zip hashed to %s, want an error", name, h)
		}
	}
}

// shortReaderAt claims more bytes than it has.
type shortReaderAt struct{ b []byte }

func (s shortReaderAt) ReadAt(p []byte, off int64) (int, error) {
	if off >= int64(len(s.b)) {
		return 0, io.EOF
	}
	n := copy(p, s.b[off:])
	if n < len(p) {
		return n, io.EOF
	}
	return n, nil
}

// TestReadAheadReadsAsUnderlying: random reads through the window return
// the bytes and errors of the data itself, including past a file that is
// shorter than the size it was opened with.
func TestReadAheadReadsAsUnderlying(t *testing.T) {
	data := make([]byte, 3*readAheadSize+123)
	rng := rand.New(rand.NewPCG(3, 4))
	for i := range data {
		data[i] = byte(rng.Uint32())
	}
	r := newReadAhead(bytes.NewReader(data), int64(len(data)))
	for range 2000 {
		off := rng.Int64N(int64(len(data)) + 10)
		p := make([]byte, rng.IntN(2*readAheadSize))
		n, err := r.ReadAt(p, off)
		wantN := max(0, min(len(p), len(data)-int(off)))
		if n != wantN || !bytes.Equal(p[:n], data[min(off, int64(len(data))):min(off, int64(len(data)))+int64(n)]) {
			t.Fatalf("ReadAt(%d bytes, %d) = %d bytes, want %d", len(p), off, n, wantN)
		}
		if (n < len(p)) != (err != nil) {
			t.Fatalf("ReadAt(%d bytes, %d) = %d, %v", len(p), off, n, err)
		}
	}
	short := newReadAhead(shortReaderAt{data[:100]}, 1000)
	p := make([]byte, 200)
	if n, err := short.ReadAt(p, 0); n != 100 || err == nil {
		t.Errorf("a file shorter than its size: read %d, %v; want 100 and an error", n, err)
	}
}

// BenchmarkHashZip compares dirhash.HashZip with HashZipFile on one zip.
func BenchmarkHashZip(b *testing.B) {
	p := writeZip(b, 60)
	st, _ := os.Stat(p)
	b.Run("dirhash", func(b *testing.B) {
		b.SetBytes(st.Size())
		for b.Loop() {
			if _, err := dirhash.HashZip(p, dirhash.Hash1); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("readahead", func(b *testing.B) {
		b.SetBytes(st.Size())
		for b.Loop() {
			if _, err := HashZipFile(p); err != nil {
				b.Fatal(err)
			}
		}
	})
}
