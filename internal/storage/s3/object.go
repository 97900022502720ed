package s3

import (
	"context"
	"errors"
	"fmt"
	"io"
	iofs "io/fs"
	"net/http"
	"sync"
	"sync/atomic"

	"github.com/minio/minio-go/v7"

	"github.com/modproxy/modproxy/internal/storage"
)

// Object is an open S3 object: an io.ReadSeekCloser and io.ReaderAt over
// HTTP GETs, returned by Store.Open. Sequential reads from the start come
// from the GET issued by Open; reads after a Seek to another position, and
// every ReadAt, are ranged GETs pinned to the version Open saw. Requests use
// the context passed to Open, so the Object is usable for that context's
// lifetime (typically one HTTP request being served).
//
// An Object is safe for concurrent use: Read and Seek share one position,
// which ReadAt neither uses nor moves. Closing an Object before reading the
// GET issued by Open to its end drops that response (and its connection),
// which for a large object costs less than a second round trip would on
// every whole read.
type Object struct {
	ctx  context.Context
	s    *Store
	name string
	info storage.Info
	etag string

	closed atomic.Bool

	mu      sync.Mutex
	off     int64         // position of the next Read
	body    io.ReadCloser // open response streaming from bodyOff, or nil
	bodyOff int64
}

var (
	_ storage.Object = (*Object)(nil)
	_ io.ReaderAt    = (*Object)(nil)
)

// ErrChanged is returned (wrapped) by reads of an Object whose key has been
// written again since Open: the bytes of two versions are never mixed.
var ErrChanged = errors.New("object changed since it was opened")

// Open implements storage.Store: it issues a GET for the whole object, so a
// missing object is reported here, and returns an *Object whose Info and
// reads belong to the version that GET answered.
func (s *Store) Open(ctx context.Context, key string) (storage.Object, error) {
	o, err := s.OpenObject(ctx, key)
	if err != nil {
		return nil, err // not a typed nil in the interface
	}
	return o, nil
}

// OpenObject is Open returning the concrete type.
func (s *Store) OpenObject(ctx context.Context, key string) (*Object, error) {
	name, err := s.name("open", key)
	if err != nil {
		return nil, err
	}
	body, oi, _, err := s.core.GetObject(ctx, s.bucket, name, minio.GetObjectOptions{})
	if err != nil {
		return nil, wrap("open", key, err)
	}
	return &Object{
		ctx:  ctx,
		s:    s,
		name: name,
		info: infoOf(key, oi),
		etag: oi.ETag,
		body: body,
	}, nil
}

// Info returns the object's key, size and modification time as of Open.
func (o *Object) Info() storage.Info { return o.info }

// get issues a GET of the object from off, to the end when length < 0,
// pinned to the ETag seen by Open.
func (o *Object) get(off, length int64) (io.ReadCloser, error) {
	var opts minio.GetObjectOptions
	if o.etag != "" {
		if err := opts.SetMatchETag(o.etag); err != nil {
			return nil, err
		}
	}
	end := off + length - 1
	if length < 0 {
		end = o.info.Size - 1
	}
	if err := opts.SetRange(off, end); err != nil {
		return nil, err
	}
	body, oi, _, err := o.s.core.GetObject(o.ctx, o.s.bucket, o.name, opts)
	if err != nil {
		if er, ok := errorResponse(err); ok && (er.StatusCode == http.StatusPreconditionFailed || er.Code == minio.PreconditionFailed) {
			return nil, fmt.Errorf("s3: read %s: %w (%w)", o.info.Key, ErrChanged, err)
		}
		if isNotExist(err) {
			return nil, fmt.Errorf("s3: read %s: %w (deleted: %w)", o.info.Key, ErrChanged, err)
		}
		return nil, wrap("read", o.info.Key, err)
	}
	// A server that ignores If-Match still names the version it answers.
	if o.etag != "" && oi.ETag != "" && oi.ETag != o.etag {
		body.Close()
		return nil, fmt.Errorf("s3: read %s: %w", o.info.Key, ErrChanged)
	}
	return body, nil
}

// Read implements io.Reader.
func (o *Object) Read(p []byte) (int, error) {
	if o.closed.Load() {
		return 0, iofs.ErrClosed
	}
	o.mu.Lock()
	defer o.mu.Unlock()
	if o.off >= o.info.Size {
		return 0, io.EOF
	}
	if len(p) == 0 {
		return 0, nil
	}
	if o.body != nil && o.bodyOff != o.off {
		o.body.Close()
		o.body = nil
	}
	if o.body == nil {
		body, err := o.get(o.off, -1)
		if err != nil {
			return 0, err
		}
		o.body, o.bodyOff = body, o.off
	}
	if rest := o.info.Size - o.off; int64(len(p)) > rest {
		p = p[:rest]
	}
	n, err := o.body.Read(p)
	o.off += int64(n)
	o.bodyOff += int64(n)
	switch {
	case err == nil:
		return n, nil
	case err == io.EOF && o.off >= o.info.Size:
		return n, io.EOF
	case err == io.EOF:
		err = io.ErrUnexpectedEOF
	}
	// Drop the response; the next Read resumes at o.off with a new GET.
	o.body.Close()
	o.body = nil
	return n, fmt.Errorf("s3: read %s at %d: %w", o.info.Key, o.off, err)
}

// Seek implements io.Seeker. It makes no request; seeking past the end is
// allowed, and Read then reports io.EOF.
func (o *Object) Seek(offset int64, whence int) (int64, error) {
	if o.closed.Load() {
		return 0, iofs.ErrClosed
	}
	o.mu.Lock()
	defer o.mu.Unlock()
	switch whence {
	case io.SeekStart:
	case io.SeekCurrent:
		offset += o.off
	case io.SeekEnd:
		offset += o.info.Size
	default:
		return 0, fmt.Errorf("s3: seek %s: invalid whence %d", o.info.Key, whence)
	}
	if offset < 0 {
		return 0, fmt.Errorf("s3: seek %s: negative position %d", o.info.Key, offset)
	}
	o.off = offset
	return offset, nil
}

// ReadAt implements io.ReaderAt with one ranged GET.
func (o *Object) ReadAt(p []byte, off int64) (int, error) {
	if o.closed.Load() {
		return 0, iofs.ErrClosed
	}
	if off < 0 {
		return 0, fmt.Errorf("s3: read %s: negative offset %d", o.info.Key, off)
	}
	if off >= o.info.Size {
		return 0, io.EOF
	}
	if len(p) == 0 {
		return 0, nil
	}
	want := min(int64(len(p)), o.info.Size-off)
	body, err := o.get(off, want)
	if err != nil {
		return 0, err
	}
	defer body.Close()
	n, err := io.ReadFull(body, p[:want])
	if err != nil {
		if err == io.EOF {
			err = io.ErrUnexpectedEOF
		}
		return n, fmt.Errorf("s3: read %s at %d: %w", o.info.Key, off+int64(n), err)
	}
	if want < int64(len(p)) {
		return n, io.EOF
	}
	return n, nil
}

// Close ends the open response, if any. Later calls return nil.
func (o *Object) Close() error {
	if o.closed.Swap(true) {
		return nil
	}
	o.mu.Lock()
	defer o.mu.Unlock()
	if o.body != nil {
		o.body.Close()
		o.body = nil
	}
	return nil
}
