// Package storage defines the contract of modproxy's artifact store.
//
// A Store maps keys (escaped GOPROXY protocol paths such as
// "github.com/!burnt!sushi/toml/@v/v1.3.2.zip", always relative, slash
// separated, validated by package artifact) to objects. The contract every
// backend must meet, checked by package storagetest:
//
//   - Put is atomic: a concurrent or later Open sees either the previous
//     object or the complete new one, never a partial object, even if the
//     process is killed during Put. A failed or cancelled Put leaves the
//     previous object (if any) untouched.
//   - Open of a missing key returns an error for which
//     errors.Is(err, fs.ErrNotExist) is true.
//   - Objects are seekable so that they can be served with
//     http.ServeContent (Range requests) without reading them whole.
//   - Keys that are not valid relative paths ("..", absolute, backslash,
//     NUL, empty elements) are rejected with ErrInvalidKey and never touch
//     anything outside the store.
//   - All methods are safe for concurrent use.
package storage

import (
	"context"
	"errors"
	"io"
	"strings"
	"time"
)

// ErrInvalidKey is returned for keys that are not safe relative paths.
var ErrInvalidKey = errors.New("invalid storage key")

// ErrNotSupported is wrapped by errors of an optional capability that the
// store cannot use for this call (for FileMover.MoveIn: the file is on
// another file system). The caller falls back to the plain Store method.
var ErrNotSupported = errors.New("not supported by this store")

// Info describes a stored object.
type Info struct {
	Key     string
	Size    int64
	ModTime time.Time // when the object was stored
}

// Object is an open stored object. The caller must Close it.
type Object interface {
	io.ReadSeekCloser
	Info() Info
}

// Store is the artifact store contract; see the package documentation.
type Store interface {
	// Open opens the object stored under key.
	Open(ctx context.Context, key string) (Object, error)
	// Stat returns the Info of the object stored under key.
	Stat(ctx context.Context, key string) (Info, error)
	// Put stores the content of r under key, replacing any previous object,
	// atomically. It reads r to EOF.
	Put(ctx context.Context, key string, r io.Reader) (Info, error)
	// Delete removes key. Deleting a missing key is not an error.
	Delete(ctx context.Context, key string) error
	// Walk calls fn for every object whose key starts with prefix, in no
	// particular order. An error from fn stops the walk and is returned.
	Walk(ctx context.Context, prefix string, fn func(Info) error) error
}

// FileMover is the optional capability of a store on the local file
// system to take in a finished file by renaming it rather than copying it
// (the disk store has it; a bucket store does not). Callers find it with a
// type assertion and fall back to Put when it is absent or fails.
//
// Contract, checked by package storagetest for every store that has it:
//
//   - MoveIn moves the regular file src into the store under key,
//     replacing any object there, with the atomicity and durability of
//     Put: the file's content is made durable (fsync) before it appears
//     under key, and readers see the previous object or the whole new one.
//     On success src no longer exists; the returned Info is that of the
//     stored object.
//   - src should be created in TempDir, which is on the store's file
//     system. A file elsewhere is either moved too or refused with an error
//     wrapping ErrNotSupported (another file system).
//   - On any error src is left where it was with its content, the object
//     under key (if any) is unchanged, and the caller still owns src: it
//     may Put the same content instead. Invalid keys are ErrInvalidKey; a
//     missing src is fs.ErrNotExist; a done ctx is ctx.Err().
//   - Safe for concurrent use, like the Store methods.
type FileMover interface {
	// TempDir is a directory on the store's file system for files that
	// are to be moved in.
	TempDir() string
	// MoveIn moves the file src into the store under key.
	MoveIn(ctx context.Context, src, key string) (Info, error)
}

// BatchWriter is the optional capability of a store on the local file
// system to write several objects with one durable step: each file's
// data is synced (unless the entry says it need not be), each is renamed
// into place, and then every directory they landed in is synced once,
// instead of a directory sync per object. The disk store has it.
//
// Contract, checked by package storagetest for every store that has it:
//
//   - WriteBatch stores the entries in order, each under its Key and each
//     atomically as Put does: a reader sees the previous object or the
//     whole new one. When it returns nil, every entry is durable. A
//     process killed before that may leave any subset of the entries
//     stored, each whole, except that an Unsynced Data entry may then also
//     be found empty or zero-filled (its data was not synced before its
//     rename): Unsynced is only for content whose readers recognise such a
//     file as invalid and treat it as missing, or for a Src the caller has
//     already made durable (see Entry.Unsynced).
//   - An entry with Src set moves that file in, as FileMover.MoveIn does
//     (Src should be in TempDir; one on another file system is refused
//     with an error wrapping ErrNotSupported); otherwise Data is the
//     content.
//   - On error, entries before the failing one may be stored (not
//     necessarily durably), the others are not, and a Src not moved is
//     left where it was, still owned by the caller. Invalid keys are
//     ErrInvalidKey (nothing is stored); a done ctx is ctx.Err().
//   - The Infos returned are those of the stored entries, in order.
//   - Safe for concurrent use, like the Store methods.
type BatchWriter interface {
	FileMover
	WriteBatch(ctx context.Context, entries []Entry) ([]Info, error)
}

// Entry is one object of a BatchWriter.WriteBatch.
type Entry struct {
	Key string
	// Data is the content, when Src is empty.
	Data []byte
	// Src is a finished file to move in instead.
	Src string
	// Unsynced lets the store skip syncing this entry's data before
	// renaming it into place (see BatchWriter). For a Src it also means
	// that the caller has already made that file durable (as a bulk
	// import does with one sync of the whole file system), so it cannot
	// be found empty after a crash.
	Unsynced bool
}

// CheckKey reports whether key is a safe relative, slash-separated path:
// non-empty, at most 1024 bytes, no leading or trailing slash, no empty,
// "." or ".." elements, no backslash, colon (drive letters, alternate
// data streams), NUL or other control characters.
func CheckKey(key string) error {
	if key == "" || len(key) > 1024 || key[0] == '/' || key[len(key)-1] == '/' {
		return ErrInvalidKey
	}
	for _, c := range []byte(key) {
		if c < 0x20 || c == 0x7f || c == '\\' || c == ':' {
			return ErrInvalidKey
		}
	}
	for elem := range strings.SplitSeq(key, "/") {
		if elem == "" || elem == "." || elem == ".." {
			return ErrInvalidKey
		}
	}
	return nil
}

// Opener opens stored objects.
type Opener interface {
	Open(ctx context.Context, key string) (Object, error)
}

// ReadSmall returns the content of a small object (recorded hashes,
// checksum database records), at most max bytes. Errors are those of Open
// (fs.ErrNotExist for a missing key) or of the read.
func ReadSmall(ctx context.Context, s Opener, key string, max int64) ([]byte, error) {
	o, err := s.Open(ctx, key)
	if err != nil {
		return nil, err
	}
	defer o.Close()
	return io.ReadAll(io.LimitReader(o, max))
}
