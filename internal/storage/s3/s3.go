// Package s3 is a storage.Store on an S3-compatible object store (Amazon S3,
// MinIO, versitygw, Ceph RGW, ...), built on github.com/minio/minio-go/v7.
//
// A store key K is kept as the object Options.Prefix+K in Options.Bucket.
// How the storage.Store contract is met:
//
//   - Put is atomic because S3 is: an object appears whole or not at all.
//     Put streams: it reads r in parts of Options.PartSize bytes, one part in
//     memory at a time. An object that fits in one part is written with one
//     PUT; a larger one with a multipart upload, which becomes visible only
//     when it is completed. When r fails, ctx is cancelled or any request
//     fails, the multipart upload is aborted (on a context detached from the
//     caller's, so that a cancelled caller still cleans up), and the previous
//     object, if any, is untouched. If ctx is cancelled while the final
//     request (the PUT or the completion) is in flight, the outcome is
//     unknown, as for any remote write: the key then holds either the old or
//     the complete new object, never a partial one. Servers keep the parts
//     of an upload whose abort failed (the server was unreachable) until a
//     bucket lifecycle rule removes them ("AbortIncompleteMultipartUpload");
//     such parts are never visible as objects.
//   - Open issues one GET for the whole object and serves sequential reads
//     from that response, so an Open and the reads that follow see one
//     version of the object even while another writer replaces it. Seeking
//     elsewhere and ReadAt issue ranged GETs pinned to the version seen by
//     Open (If-Match on its ETag, checked again on the answer); if the
//     object has been replaced since Open, they fail with an error
//     instead of mixing two versions.
//   - Missing objects are reported with errors for which
//     errors.Is(err, fs.ErrNotExist) is true; a missing bucket is not.
//   - Keys are checked with storage.CheckKey before any request.
//
// Objects are immutable once written except by a later Put of the same key;
// PutIfAbsent creates an object only when the key is free (see there for the
// conditional write and its fallback). PresignGet makes time-limited URLs
// for redirecting clients to the bucket.
package s3

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	iofs "io/fs"
	"net"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/minio/minio-go/v7"
	"github.com/minio/minio-go/v7/pkg/credentials"

	"github.com/modproxy/modproxy/internal/storage"
)

const (
	// DefaultPartSize is the part size used when Options.PartSize is zero.
	DefaultPartSize = 16 << 20
	// MinPartSize is the smallest part size S3 accepts for all but the last
	// part of a multipart upload.
	MinPartSize = 5 << 20
	// MaxPartSize is the largest part size S3 accepts.
	MaxPartSize = 5 << 30
	// maxParts is the largest number of parts of one multipart upload.
	maxParts = 10000
	// DefaultTimeout is the request timeout used when Options.Timeout is zero.
	DefaultTimeout = 30 * time.Second
	// cleanupTimeout bounds aborting a failed multipart upload.
	cleanupTimeout = time.Minute
)

// Options configure a Store.
type Options struct {
	// Endpoint is the server's host[:port] ("s3.eu-west-1.amazonaws.com",
	// "127.0.0.1:9000"). A URL with an http:// or https:// scheme and no
	// path is accepted too; its scheme then decides Secure.
	Endpoint string
	// Region is the bucket's region. Empty: asked from the server once
	// (GetBucketLocation) when it is needed for signing.
	Region string
	// Bucket must exist; New checks it.
	Bucket string
	// Prefix is prepended to every key to form the object name; it usually
	// ends in "/" ("modproxy/"). Walk sees only objects under it.
	Prefix string
	// AccessKey and SecretKey (and optionally SessionToken) are static
	// credentials. When AccessKey and SecretKey are both empty, credentials
	// come from the standard AWS chain, first that has them: the
	// environment (AWS_ACCESS_KEY_ID, AWS_SECRET_ACCESS_KEY,
	// AWS_SESSION_TOKEN), the shared credentials file (~/.aws/credentials,
	// AWS_SHARED_CREDENTIALS_FILE, AWS_PROFILE), then the instance,
	// container or web-identity role (IAM).
	AccessKey, SecretKey, SessionToken string
	// Secure selects https.
	Secure bool
	// PathStyle forces path-style requests (http://host/bucket/key), which
	// MinIO-like servers need. Otherwise the style is chosen from the
	// endpoint (virtual-host style for Amazon S3 and other known clouds,
	// path style elsewhere).
	PathStyle bool
	// PartSize is the size of one part of a multipart upload, and the most
	// memory one Put holds; between MinPartSize and MaxPartSize. Zero:
	// DefaultPartSize. Objects up to PartSize bytes are written with one
	// PUT. An object can have at most 10000 parts (156 GiB at the default).
	PartSize int64
	// Timeout bounds connecting to the server and waiting for the headers
	// of each response. It does not bound transferring a body: an upload
	// or download may take as long as the caller's context allows. Zero:
	// DefaultTimeout.
	Timeout time.Duration
	// MaxRetries is how many times a request is tried when it fails with a
	// retryable error (network errors, 5xx, throttling), with backoff.
	// Zero: minio-go's default (10); 1 disables retries.
	MaxRetries int
}

// Store is a storage.Store on an S3 bucket. It is safe for concurrent use,
// including by several processes (replicas) sharing the bucket.
type Store struct {
	client    *minio.Client
	core      minio.Core
	transport *http.Transport
	bucket    string
	prefix    string
	partSize  int64
	timeout   time.Duration
	// parts holds *[]byte buffers of partSize bytes for Put.
	parts sync.Pool
	// noConditional is set once the server has answered a conditional
	// write with 501 Not Implemented; PutIfAbsent then relies on its Stat.
	noConditional atomic.Bool
}

var _ storage.Store = (*Store)(nil)

// New returns a Store for opts.Bucket on opts.Endpoint. It checks that the
// bucket exists and is reachable with the credentials, and returns an error
// naming the bucket and endpoint otherwise.
func New(ctx context.Context, opts Options) (*Store, error) {
	endpoint, secure, err := parseEndpoint(opts.Endpoint, opts.Secure)
	if err != nil {
		return nil, err
	}
	if opts.Bucket == "" {
		return nil, errors.New("s3: no bucket configured")
	}
	if strings.HasPrefix(opts.Prefix, "/") {
		return nil, fmt.Errorf("s3: prefix %q must not start with a slash", opts.Prefix)
	}
	partSize := opts.PartSize
	switch {
	case partSize == 0:
		partSize = DefaultPartSize
	case partSize < MinPartSize || partSize > MaxPartSize:
		return nil, fmt.Errorf("s3: part size %d is outside [%d, %d]", partSize, MinPartSize, MaxPartSize)
	}
	timeout := opts.Timeout
	if timeout <= 0 {
		timeout = DefaultTimeout
	}

	var creds *credentials.Credentials
	switch {
	case opts.AccessKey != "" && opts.SecretKey != "":
		creds = credentials.NewStaticV4(opts.AccessKey, opts.SecretKey, opts.SessionToken)
	case opts.AccessKey != "" || opts.SecretKey != "":
		return nil, errors.New("s3: set both the access key and the secret key, or neither to use the AWS credential chain")
	default:
		creds = credentials.NewChainCredentials([]credentials.Provider{
			&credentials.EnvAWS{},
			&credentials.FileAWSCredentials{},
			&credentials.IAM{},
		})
	}

	tr, err := minio.DefaultTransport(secure)
	if err != nil {
		return nil, fmt.Errorf("s3: %w", err)
	}
	tr.DialContext = (&net.Dialer{Timeout: timeout, KeepAlive: 30 * time.Second}).DialContext
	tr.TLSHandshakeTimeout = timeout
	tr.ResponseHeaderTimeout = timeout
	lookup := minio.BucketLookupAuto
	if opts.PathStyle {
		lookup = minio.BucketLookupPath
	}
	client, err := minio.New(endpoint, &minio.Options{
		Creds:        creds,
		Secure:       secure,
		Transport:    tr,
		Region:       opts.Region,
		BucketLookup: lookup,
		MaxRetries:   opts.MaxRetries,
	})
	if err != nil {
		return nil, fmt.Errorf("s3: endpoint %q: %w", opts.Endpoint, err)
	}
	s := &Store{
		client:    client,
		core:      minio.Core{Client: client},
		transport: tr,
		bucket:    opts.Bucket,
		prefix:    opts.Prefix,
		partSize:  partSize,
		timeout:   timeout,
	}
	s.parts.New = func() any {
		b := make([]byte, partSize)
		return &b
	}

	cctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	ok, err := client.BucketExists(cctx, opts.Bucket)
	if err != nil {
		return nil, fmt.Errorf("s3: checking bucket %q at %s: %w", opts.Bucket, client.EndpointURL().Redacted(), err)
	}
	if !ok {
		return nil, fmt.Errorf("s3: bucket %q does not exist at %s", opts.Bucket, client.EndpointURL().Redacted())
	}
	return s, nil
}

func parseEndpoint(endpoint string, secure bool) (host string, https bool, err error) {
	if endpoint == "" {
		return "", false, errors.New("s3: no endpoint configured")
	}
	if !strings.Contains(endpoint, "://") {
		return endpoint, secure, nil
	}
	u, err := url.Parse(endpoint)
	if err != nil {
		return "", false, fmt.Errorf("s3: endpoint %q: %w", endpoint, err)
	}
	if (u.Path != "" && u.Path != "/") || u.RawQuery != "" || u.User != nil || u.Host == "" {
		return "", false, fmt.Errorf("s3: endpoint %q: want host[:port] or a scheme and host[:port] only", endpoint)
	}
	switch u.Scheme {
	case "https":
		return u.Host, true, nil
	case "http":
		if secure {
			return "", false, fmt.Errorf("s3: endpoint %q is http:// but https was requested", endpoint)
		}
		return u.Host, false, nil
	}
	return "", false, fmt.Errorf("s3: endpoint %q: scheme must be http or https", endpoint)
}

// Close releases idle connections. The Store must not be used afterwards.
func (s *Store) Close() error {
	s.transport.CloseIdleConnections()
	return nil
}

// name checks key and returns its object name.
func (s *Store) name(op, key string) (string, error) {
	if err := storage.CheckKey(key); err != nil {
		return "", fmt.Errorf("s3: %s %q: %w", op, key, err)
	}
	return s.prefix + key, nil
}

// errorResponse returns the S3 error in err's chain, if any.
func errorResponse(err error) (minio.ErrorResponse, bool) {
	var er minio.ErrorResponse
	if errors.As(err, &er) {
		return er, true
	}
	var per *minio.ErrorResponse
	if errors.As(err, &per) && per != nil {
		return *per, true
	}
	return minio.ErrorResponse{}, false
}

// isNotExist reports whether err says that the object (not the bucket)
// does not exist.
func isNotExist(err error) bool {
	er, ok := errorResponse(err)
	if !ok {
		return false
	}
	switch er.Code {
	case minio.NoSuchKey, "NotFound":
		return true
	case minio.NoSuchBucket:
		return false
	}
	return er.StatusCode == http.StatusNotFound
}

// wrap adds the operation and key to err and makes a missing object match
// fs.ErrNotExist.
func wrap(op, key string, err error) error {
	if isNotExist(err) {
		return fmt.Errorf("s3: %s %s: %w (%w)", op, key, iofs.ErrNotExist, err)
	}
	return fmt.Errorf("s3: %s %s: %w", op, key, err)
}

func infoOf(key string, oi minio.ObjectInfo) storage.Info {
	return storage.Info{Key: key, Size: oi.Size, ModTime: oi.LastModified}
}

// Stat implements storage.Store.
func (s *Store) Stat(ctx context.Context, key string) (storage.Info, error) {
	name, err := s.name("stat", key)
	if err != nil {
		return storage.Info{}, err
	}
	oi, err := s.client.StatObject(ctx, s.bucket, name, minio.StatObjectOptions{})
	if err != nil {
		return storage.Info{}, wrap("stat", key, err)
	}
	return infoOf(key, oi), nil
}

// Delete implements storage.Store. Deleting a missing key is not an error.
func (s *Store) Delete(ctx context.Context, key string) error {
	name, err := s.name("delete", key)
	if err != nil {
		return err
	}
	if err := s.client.RemoveObject(ctx, s.bucket, name, minio.RemoveObjectOptions{}); err != nil && !isNotExist(err) {
		return wrap("delete", key, err)
	}
	return nil
}

// Walk implements storage.Store: it lists the objects whose names start
// with Prefix+prefix. Objects under the store's Prefix whose remaining name
// is not a valid key (directory markers ending in "/", for instance) are
// skipped. Objects created or deleted during the walk may or may not be
// seen.
func (s *Store) Walk(ctx context.Context, prefix string, fn func(storage.Info) error) error {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel() // stops the listing goroutine when fn ends the walk early
	for oi := range s.client.ListObjectsIter(ctx, s.bucket, minio.ListObjectsOptions{
		Prefix:    s.prefix + prefix,
		Recursive: true,
	}) {
		if oi.Err != nil {
			return fmt.Errorf("s3: walk %q: %w", prefix, oi.Err)
		}
		if err := ctx.Err(); err != nil {
			return fmt.Errorf("s3: walk %q: %w", prefix, err)
		}
		key, ok := strings.CutPrefix(oi.Key, s.prefix)
		if !ok || storage.CheckKey(key) != nil {
			continue
		}
		if err := fn(infoOf(key, oi)); err != nil {
			return err
		}
	}
	return nil
}

// PresignGet returns a URL through which anyone holding it can GET the
// object stored under key, without credentials, for ttl (between one second
// and seven days, S3's limits). It makes no request and does not check that
// the object exists. The URL names the store's endpoint, so clients must be
// able to reach it (redirect mode).
func (s *Store) PresignGet(ctx context.Context, key string, ttl time.Duration) (*url.URL, error) {
	name, err := s.name("presign", key)
	if err != nil {
		return nil, err
	}
	u, err := s.client.PresignedGetObject(ctx, s.bucket, name, ttl, nil)
	if err != nil {
		return nil, fmt.Errorf("s3: presign %s: %w", key, err)
	}
	return u, nil
}

// contentType is stored with each object, so that clients redirected to the
// bucket (PresignGet) get a sensible Content-Type.
func contentType(key string) string {
	switch {
	case strings.HasSuffix(key, ".zip"):
		return "application/zip"
	case strings.HasSuffix(key, ".info"), strings.HasSuffix(key, "/@latest"):
		return "application/json"
	case strings.HasSuffix(key, ".mod"), strings.HasSuffix(key, "/@v/list"):
		return "text/plain; charset=utf-8"
	}
	return "application/octet-stream"
}

// ctxReader stops a copy when ctx is done.
type ctxReader struct {
	ctx context.Context
	r   io.Reader
}

func (c ctxReader) Read(p []byte) (int, error) {
	if err := c.ctx.Err(); err != nil {
		return 0, err
	}
	return c.r.Read(p)
}

// errExists is returned by put when a conditional write found the key taken.
var errExists = errors.New("object exists")

// Put implements storage.Store; see the package documentation for how it
// streams and stays atomic. The returned Info has the number of bytes read
// from r and the server's modification time (the local time if the object
// cannot be looked at after the write, for instance because it has already
// been deleted again).
func (s *Store) Put(ctx context.Context, key string, r io.Reader) (storage.Info, error) {
	name, err := s.name("put", key)
	if err != nil {
		return storage.Info{}, err
	}
	return s.put(ctx, key, name, r, false)
}

// PutIfAbsent stores the content of r under key only if no object is stored
// there, and reports whether it created the object. When the key is taken
// it returns false and a nil error, possibly without reading r.
//
// It first looks the key up (so that an existing zip is not uploaded for
// nothing), then writes with the conditional header "If-None-Match: *" (on
// the PUT, or on the completion of a multipart upload), which servers that
// implement conditional writes (Amazon S3, MinIO, versitygw, Ceph RGW, R2,
// ...) refuse with 412 when another writer created the object in between;
// the upload is then discarded and PutIfAbsent returns false.
//
// Fallback: a server that answers the header with 501 Not Implemented is
// written to again without it (and the store stops sending it); a server
// that silently ignores it behaves the same way. Then only the lookup
// protects the key, and two writers racing between their lookup and their
// write may both write, the last one winning, and both may report true. For
// what modproxy stores this way — immutable, checksum-verified artifacts,
// whose every writer writes identical bytes — that is safe: the object
// appears atomically either way and its content is the same.
func (s *Store) PutIfAbsent(ctx context.Context, key string, r io.Reader) (created bool, err error) {
	name, err := s.name("put", key)
	if err != nil {
		return false, err
	}
	if _, err := s.Stat(ctx, key); err == nil {
		return false, nil
	} else if !errors.Is(err, iofs.ErrNotExist) {
		return false, err
	}
	_, err = s.put(ctx, key, name, r, true)
	if errors.Is(err, errExists) {
		return false, nil
	}
	return err == nil, err
}

// put writes r to name. With ifAbsent the write is conditional and fails
// with errExists when the object exists.
func (s *Store) put(ctx context.Context, key, name string, r io.Reader, ifAbsent bool) (storage.Info, error) {
	if err := ctx.Err(); err != nil {
		return storage.Info{}, fmt.Errorf("s3: put %s: %w", key, err)
	}
	bp := s.parts.Get().(*[]byte)
	defer s.parts.Put(bp)
	buf := *bp
	cr := ctxReader{ctx, r}

	n, rerr := io.ReadFull(cr, buf)
	var (
		size int64
		err  error
	)
	switch rerr {
	case io.EOF, io.ErrUnexpectedEOF: // fits in one part
		size = int64(n)
		err = s.putSingle(ctx, name, buf[:n], contentType(key), ifAbsent)
	case nil: // perhaps more: multipart
		size, err = s.putMultipart(ctx, name, buf, cr, contentType(key), ifAbsent)
	default:
		err = rerr
	}
	if err != nil {
		if errors.Is(err, errExists) {
			return storage.Info{}, err
		}
		return storage.Info{}, fmt.Errorf("s3: put %s: %w", key, err)
	}
	info := storage.Info{Key: key, Size: size, ModTime: time.Now()}
	if oi, err := s.client.StatObject(ctx, s.bucket, name, minio.StatObjectOptions{}); err == nil {
		info.ModTime = oi.LastModified
	}
	return info, nil
}

// commit runs a final write request with the conditional header when
// ifAbsent is set, and maps its outcome: 412 (and a 409 conflict with a
// concurrent conditional write that left an object) to errExists; 501 to a
// retry without the header (see PutIfAbsent).
func (s *Store) commit(ctx context.Context, name string, ifAbsent bool, do func(minio.PutObjectOptions) error) error {
	opts := minio.PutObjectOptions{}
	conditional := ifAbsent && !s.noConditional.Load()
	if conditional {
		opts.SetMatchETagExcept("*")
	}
	err := do(opts)
	if err == nil || !ifAbsent {
		return err
	}
	er, _ := errorResponse(err)
	switch {
	case er.StatusCode == http.StatusPreconditionFailed || er.Code == minio.PreconditionFailed:
		return errExists
	case er.StatusCode == http.StatusConflict:
		// Amazon S3: a concurrent conditional write is in progress.
		if _, serr := s.client.StatObject(ctx, s.bucket, name, minio.StatObjectOptions{}); serr == nil {
			return errExists
		}
	case conditional && (er.StatusCode == http.StatusNotImplemented || er.Code == minio.NotImplemented):
		s.noConditional.Store(true)
		return do(minio.PutObjectOptions{})
	}
	return err
}

// putSingle writes data with one PUT.
func (s *Store) putSingle(ctx context.Context, name string, data []byte, ctype string, ifAbsent bool) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	return s.commit(ctx, name, ifAbsent, func(opts minio.PutObjectOptions) error {
		opts.ContentType = ctype
		opts.DisableMultipart = true
		opts.PartSize = uint64(s.partSize)
		_, err := s.client.PutObject(ctx, s.bucket, name, bytes.NewReader(data), int64(len(data)), opts)
		return err
	})
}

// putMultipart uploads buf (the first part, already filled by the caller)
// and the rest of r as a multipart upload, reusing buf for every part, and
// completes it; on any failure it aborts the upload so that nothing becomes
// visible.
func (s *Store) putMultipart(ctx context.Context, name string, buf []byte, r io.Reader, ctype string, ifAbsent bool) (size int64, err error) {
	uploadID, err := s.core.NewMultipartUpload(ctx, s.bucket, name, minio.PutObjectOptions{ContentType: ctype})
	if err != nil {
		return 0, fmt.Errorf("starting multipart upload: %w", err)
	}
	defer func() {
		if err == nil {
			return
		}
		// Abort even when ctx is cancelled: that is when it matters most.
		actx, cancel := context.WithTimeout(context.WithoutCancel(ctx), cleanupTimeout)
		defer cancel()
		if aerr := s.core.AbortMultipartUpload(actx, s.bucket, name, uploadID); aerr != nil && !isNoSuchUpload(aerr) {
			err = errors.Join(err, fmt.Errorf("aborting multipart upload %s: %w", uploadID, aerr))
		}
	}()

	var parts []minio.CompletePart
	n, last := len(buf), false // the caller filled buf
	for {
		if len(parts) == maxParts {
			return 0, fmt.Errorf("object larger than %d parts of %d bytes", maxParts, len(buf))
		}
		p, err := s.core.PutObjectPart(ctx, s.bucket, name, uploadID, len(parts)+1,
			bytes.NewReader(buf[:n]), int64(n), minio.PutObjectPartOptions{})
		if err != nil {
			return 0, fmt.Errorf("uploading part %d: %w", len(parts)+1, err)
		}
		parts = append(parts, minio.CompletePart{
			PartNumber:        p.PartNumber,
			ETag:              p.ETag,
			ChecksumCRC32:     p.ChecksumCRC32,
			ChecksumCRC32C:    p.ChecksumCRC32C,
			ChecksumSHA1:      p.ChecksumSHA1,
			ChecksumSHA256:    p.ChecksumSHA256,
			ChecksumCRC64NVME: p.ChecksumCRC64NVME,
		})
		size += int64(n)
		if last {
			break
		}
		var rerr error
		n, rerr = io.ReadFull(r, buf)
		if rerr == io.EOF {
			break
		}
		if rerr == io.ErrUnexpectedEOF {
			last = true // a short final part
		} else if rerr != nil {
			return 0, rerr
		}
	}
	if err := ctx.Err(); err != nil {
		return 0, err
	}
	err = s.commit(ctx, name, ifAbsent, func(opts minio.PutObjectOptions) error {
		_, err := s.core.CompleteMultipartUpload(ctx, s.bucket, name, uploadID, parts, opts)
		return err
	})
	if err != nil && !errors.Is(err, errExists) {
		err = fmt.Errorf("completing multipart upload: %w", err)
	}
	return size, err
}

func isNoSuchUpload(err error) bool {
	er, ok := errorResponse(err)
	return ok && (er.Code == "NoSuchUpload" || er.StatusCode == http.StatusNotFound)
}
