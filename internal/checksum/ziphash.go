package checksum

import (
	"archive/zip"
	"errors"
	"fmt"
	"io"
	"os"
	"sync"

	"golang.org/x/mod/sumdb/dirhash"
)

// HashZipFile returns the h1: hash go.sum records for the module zip at
// path, the hash dirhash.HashZip gives (a zip with two entries of one
// name, which dirhash would hash, is refused), reading each entry (which checks its
// CRC-32). It reads the file through a read-ahead buffer: archive/zip
// decompresses through 4 KiB reads at offsets, one system call each, which
// cost as much CPU as the decompression itself. The zip is streamed, never
// held whole in memory.
func HashZipFile(path string) (string, error) {
	f, err := os.Open(path)
	if err != nil {
		return "", err
	}
	defer f.Close()
	st, err := f.Stat()
	if err != nil {
		return "", err
	}
	return HashZip(f, st.Size())
}

// HashZip is HashZipFile over any io.ReaderAt of size bytes. A zip with
// two entries of the same name is refused (as the go command refuses it).
func HashZip(ra io.ReaderAt, size int64) (string, error) {
	zr, err := zip.NewReader(newReadAhead(ra, size), size)
	if err != nil {
		return "", err
	}
	files := make(map[string]*zip.File, len(zr.File))
	names := make([]string, 0, len(zr.File))
	for _, f := range zr.File {
		if _, dup := files[f.Name]; dup {
			return "", fmt.Errorf("duplicate zip entry %q", f.Name)
		}
		files[f.Name] = f
		names = append(names, f.Name)
	}
	buf := make([]byte, 32<<10) // one copy buffer for every entry, not one each
	return dirhash.Hash1(names, func(name string) (io.ReadCloser, error) {
		f, ok := files[name]
		if !ok {
			return nil, errors.New("file not found")
		}
		rc, err := f.Open()
		if err != nil {
			return nil, err
		}
		return &entryReader{ReadCloser: rc, buf: buf}, nil
	})
}

// entryReader is a zip entry whose WriteTo copies through a shared buffer:
// dirhash.Hash1 copies each entry with io.Copy, which otherwise allocates
// a buffer per entry (a large allocation, cleared and collected, for each
// of a zip's thousands of files).
type entryReader struct {
	io.ReadCloser
	buf []byte
}

// WriteTo implements io.WriterTo.
func (e *entryReader) WriteTo(w io.Writer) (int64, error) {
	var n int64
	for {
		m, err := e.Read(e.buf)
		if m > 0 {
			k, werr := w.Write(e.buf[:m])
			n += int64(k)
			if werr != nil {
				return n, werr
			}
		}
		if err == io.EOF {
			return n, nil
		}
		if err != nil {
			return n, err
		}
	}
}

// readAheadSize is how much readAhead reads at once.
const readAheadSize = 256 << 10

// readAhead is an io.ReaderAt that serves reads from one buffered window
// of ra, refilled at the offset of a read outside it: sequential small
// reads (archive/zip's) become one read of readAheadSize. It is safe for
// concurrent use (one lock; the callers here read one entry at a time).
type readAhead struct {
	ra   io.ReaderAt
	size int64

	mu  sync.Mutex
	buf []byte
	off int64 // offset of buf[0] in ra
}

func newReadAhead(ra io.ReaderAt, size int64) *readAhead {
	return &readAhead{ra: ra, size: size}
}

// ReadAt implements io.ReaderAt.
func (r *readAhead) ReadAt(p []byte, off int64) (int, error) {
	if off < 0 {
		return 0, errors.New("readahead: negative offset")
	}
	if len(p) >= readAheadSize {
		return r.ra.ReadAt(p, off) // large reads need no buffer
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	n := 0
	for n < len(p) {
		o := off + int64(n)
		if o >= r.size {
			return n, io.EOF
		}
		if o < r.off || o >= r.off+int64(len(r.buf)) {
			if err := r.fill(o); err != nil {
				return n, err
			}
		}
		n += copy(p[n:], r.buf[o-r.off:])
	}
	return n, nil
}

// fill reads the window starting at off (which is < r.size).
func (r *readAhead) fill(off int64) error {
	want := min(int64(readAheadSize), r.size-off)
	if cap(r.buf) < readAheadSize {
		r.buf = make([]byte, readAheadSize)
	}
	r.buf = r.buf[:want]
	m, err := r.ra.ReadAt(r.buf, off)
	r.buf, r.off = r.buf[:m], off
	if m == 0 {
		if err == nil || err == io.EOF {
			err = io.ErrUnexpectedEOF // the file is shorter than its size
		}
		return err
	}
	if err == io.EOF {
		err = nil // a short last window; the loop stops at r.size
	}
	return err
}
