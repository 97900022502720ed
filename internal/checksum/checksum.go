// Package checksum verifies module content against a Go checksum database
// before modproxy admits it, with golang.org/x/mod/sumdb.Client and our own
// ClientOps:
//
//   - the database is read through Options.Remote (modproxy wires it to the
//     proxy service, so lookups and tiles come through the configured
//     upstreams' /sumdb/NAME/ endpoints and are cached in the store); each
//     remote read is bounded by Options.Timeout, because the library's
//     operations take no context;
//   - the latest verified signed tree head is persisted in
//     Options.StateDir/NAME/latest and replaced only by compare-and-swap
//     (sumdb.ErrWriteConflict on a lost race), so after a restart a
//     database that forked or went back in time is detected, as the go
//     command detects it;
//   - such a security error is logged at error level, counted, audited and
//     fails the verification that saw it;
//   - module paths matching Options.Private (GONOSUMDB syntax) are never
//     looked up: they are admitted on the upstream's word;
//   - nothing a failed verification read is remembered: every Verify uses
//     a fresh sumdb.Client (whose cache would keep a failed lookup or tile
//     read, and a failed start-up, for its whole life). Continuity comes
//     from the persisted tree head, which every client reads first and
//     advances by compare-and-swap, exactly as separate go command
//     processes share one; lookups and tiles come from the store.
//
// A Verifier is safe for concurrent use.
package checksum

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/base64"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"time"

	"golang.org/x/mod/module"
	"golang.org/x/mod/sumdb"
	"golang.org/x/mod/sumdb/dirhash"
	"golang.org/x/mod/sumdb/note"

	"github.com/modproxy/modproxy/internal/atomicfile"
	"github.com/modproxy/modproxy/internal/audit"
	"github.com/modproxy/modproxy/internal/errclass"
	"github.com/modproxy/modproxy/internal/metrics"
)

// HashGoMod returns the h1: hash go.sum records for a go.mod file.
func HashGoMod(data []byte) (string, error) {
	return dirhash.Hash1([]string{"go.mod"}, func(string) (io.ReadCloser, error) {
		return io.NopCloser(bytes.NewReader(data)), nil
	})
}

// ValidH1 reports whether s is an h1: hash as go.sum records it: "h1:"
// and the standard base64 of a SHA-256 sum. A recorded hash that is not
// (a sidecar left empty or zero-filled by a crash) counts as missing.
func ValidH1(s string) bool {
	b, ok := strings.CutPrefix(s, "h1:")
	if !ok || len(b) != base64.StdEncoding.EncodedLen(sha256.Size) {
		return false
	}
	d, err := base64.StdEncoding.DecodeString(b)
	return err == nil && len(d) == sha256.Size
}

// Remote reads a file of the checksum database: path is "/lookup/M@V",
// "/tile/..." or "/latest".
type Remote func(ctx context.Context, path string) ([]byte, error)

// Options configures a Verifier.
type Options struct {
	Key      string // verifier key "NAME+hash+keydata"
	Remote   Remote
	StateDir string        // persisted tree heads
	Private  string        // GONOSUMDB-style comma-separated patterns
	Timeout  time.Duration // per remote read; default 30s
	Logger   *slog.Logger
	Metrics  *metrics.Metrics
	Audit    *audit.Log
}

// Verifier checks hashes against one checksum database.
type Verifier struct {
	name    string
	private string
	ops     *ops
	log     *slog.Logger
	metrics *metrics.Metrics
	audit   *audit.Log
}

// New returns a Verifier. The key must parse as a note verifier key.
func New(opts Options) (*Verifier, error) {
	v, err := note.NewVerifier(opts.Key)
	if err != nil {
		return nil, fmt.Errorf("checksum database key %q: %w", opts.Key, err)
	}
	if opts.Timeout <= 0 {
		opts.Timeout = 30 * time.Second
	}
	if opts.Logger == nil {
		opts.Logger = slog.New(slog.DiscardHandler)
	}
	if err := os.MkdirAll(filepath.Join(opts.StateDir, v.Name()), 0o755); err != nil {
		return nil, fmt.Errorf("checksum state: %w", err)
	}
	vr := &Verifier{name: v.Name(), private: opts.Private, log: opts.Logger, metrics: opts.Metrics, audit: opts.Audit}
	vr.ops = &ops{v: vr, key: opts.Key, remote: opts.Remote, timeout: opts.Timeout, state: opts.StateDir}
	return vr, nil
}

// client returns a new sumdb.Client for one verification. sumdb.Client
// caches the outcome of every lookup, tile read and its own start-up,
// failures included, so a long-lived one would answer a transient failure
// (a database 5xx, a full disk) until restart. A fresh client costs a read
// of the persisted tree head and a signature check, and reads lookups and
// tiles from the store, where they are cached. Its remote reads run under
// ctx (each bounded by Options.Timeout).
func (v *Verifier) client(ctx context.Context) *sumdb.Client {
	return v.newClient(&clientOps{ops: v.ops, ctx: ctx})
}

func (v *Verifier) newClient(o *clientOps) *sumdb.Client {
	c := sumdb.NewClient(o)
	c.SetGONOSUMDB(v.private)
	return c
}

// Name is the database name.
func (v *Verifier) Name() string { return v.name }

// Private reports whether path matches the private patterns: such modules
// are never looked up in the database.
func (v *Verifier) Private(path string) bool {
	return module.MatchPrefixPatterns(v.private, path)
}

// MismatchError is content whose hash differs from the database's.
type MismatchError struct {
	Module, Version string
	File            string // "zip" or "go.mod"
	Got, Want       string
	DB              string
}

func (e *MismatchError) Error() string {
	return fmt.Sprintf("checksum mismatch for %s@%s %s: upstream content hashes to %s, checksum database %s says %s",
		e.Module, e.Version, e.File, e.Got, e.DB, e.Want)
}

// LookupError is a verification that could not be completed: the
// database does not know the version, could not be reached, or misbehaved
// (then errors.Is(err, sumdb.ErrSecurity)).
type LookupError struct {
	Module, Version string
	DB              string
	// NotFound is set when the database answered that it does not know
	// the version (as opposed to being unreachable or misbehaving).
	NotFound bool
	Err      error
	// Cause, when set, is the local failure behind Err (local storage
	// full while a tile or lookup was stored, or the tree head written),
	// which sumdb.Client flattened into Err's text; it is kept so that
	// errors.Is and errclass.Of find it (the class is then StoreFull).
	Cause error
}

func (e *LookupError) Error() string {
	return fmt.Sprintf("verifying %s@%s with checksum database %s: %v", e.Module, e.Version, e.DB, e.Err)
}

// Unwrap returns Err and Cause.
func (e *LookupError) Unwrap() []error {
	if e.Cause == nil {
		return []error{e.Err}
	}
	return []error{e.Err, e.Cause}
}

// ErrPrivate is returned by Verify for private module paths: nothing was
// looked up; callers admit them on the upstream's word.
var ErrPrivate = errors.New("private module: not verified against a public checksum database")

// Verify checks h1, the hash of the module's zip (goMod false) or go.mod
// (goMod true), against the database. It returns nil when they agree,
// ErrPrivate for private paths, *MismatchError when they differ and
// *LookupError when the database cannot vouch for the version.
func (v *Verifier) Verify(ctx context.Context, path, version string, goMod bool, h1 string) error {
	if v.Private(path) {
		v.metrics.Verification("private")
		return ErrPrivate
	}
	vers, file := version, "zip"
	if goMod {
		vers, file = version+"/go.mod", "go.mod"
	}
	mark := v.ops.full.mark()
	lines, err := v.client(ctx).Lookup(path, vers)
	if err != nil {
		le := &LookupError{Module: path, Version: version, DB: v.name, Err: err, Cause: v.ops.full.since(mark)}
		switch {
		case errors.Is(err, sumdb.ErrSecurity):
			v.metrics.Verification("security")
		case le.Cause != nil:
			v.metrics.Verification("error")
		case v.notFound(ctx, path, version):
			le.NotFound = true
			v.metrics.Verification("unknown")
		default:
			v.metrics.Verification("error")
		}
		return le
	}
	var want string
	prefix := path + " " + vers + " "
	for _, l := range lines {
		if h, ok := strings.CutPrefix(l, prefix); ok && strings.HasPrefix(h, "h1:") {
			want = h
		}
	}
	if want == "" {
		v.metrics.Verification("unknown")
		return &LookupError{Module: path, Version: version, DB: v.name, NotFound: true, Err: errors.New("the database has no h1 hash for it")}
	}
	if want != h1 {
		v.metrics.Verification("mismatch")
		return &MismatchError{Module: path, Version: version, File: file, Got: h1, Want: want, DB: v.name}
	}
	v.metrics.Verification("ok")
	return nil
}

// Prefetch reads what a verification of path@version will need (the
// database's lookup record and the tiles that prove it) through Remote, so
// that it is in the cache when Verify runs; it checks nothing and admits
// nothing. Concurrent reads of one file are coalesced by Remote (the proxy
// service's fills), and, as with Verify, nothing a failed prefetch read is
// remembered here. Private paths are never looked up (ErrPrivate). It
// returns when the reads are done or ctx is.
func (v *Verifier) Prefetch(ctx context.Context, path, version string) error {
	if v.Private(path) {
		return ErrPrivate
	}
	// A misbehaving database is reported by the verification that follows
	// (which sees it again), not twice.
	if _, err := v.newClient(&clientOps{ops: v.ops, ctx: ctx, prefetch: true}).Lookup(path, version); err != nil {
		return &LookupError{Module: path, Version: version, DB: v.name, Err: err}
	}
	return nil
}

// notFound reports whether the database answers "not found" for the
// version. sumdb.Client flattens errors to text, so a failed lookup is
// classified by asking Remote again (it answers from the negative cache).
func (v *Verifier) notFound(ctx context.Context, path, version string) bool {
	epath, err1 := module.EscapePath(path)
	evers, err2 := module.EscapeVersion(version)
	if err1 != nil || err2 != nil {
		return false
	}
	_, err := v.ops.remote(ctx, "/lookup/"+epath+"@"+evers)
	return errors.Is(err, fs.ErrNotExist)
}

// ops implements sumdb.ClientOps.
type ops struct {
	v       *Verifier
	key     string
	remote  Remote
	timeout time.Duration
	state   string
	mu      sync.Mutex // serializes WriteConfig's compare-and-swap
	full    fullStore  // causes that sumdb.Client would flatten
}

// fullStore remembers the latest "local storage full" failure
// (errclass.IsStoreFull) of a remote read (the proxy could not store a
// tile or lookup) or of a tree head write. sumdb.Client flattens the
// errors of its operations into text, so Verify takes the cause from
// here: a failure recorded after its lookup began (sequence numbers). With
// verifications running at once, the failure may be another's; a full
// disk is full for all of them.
type fullStore struct {
	mu  sync.Mutex
	seq uint64
	err error
}

// note records err if it says that local storage is full.
func (f *fullStore) note(err error) {
	if errclass.IsStoreFull(err) {
		f.mu.Lock()
		f.seq++
		f.err = err
		f.mu.Unlock()
	}
}

// mark returns the current sequence number, for since.
func (f *fullStore) mark() uint64 {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.seq
}

// since returns the latest failure recorded after mark, or nil.
func (f *fullStore) since(mark uint64) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.seq == mark {
		return nil
	}
	return f.err
}

// clientOps is the ops of one sumdb.Client: the shared state plus the
// context of the verification (or prefetch) it serves.
type clientOps struct {
	*ops
	ctx      context.Context
	prefetch bool // SecurityError is left to the verification
}

func (o *clientOps) SecurityError(msg string) {
	if o.prefetch {
		o.v.log.Debug("checksum database prefetch saw misbehaviour: the verification will report it", "db", o.v.name)
		return
	}
	o.ops.SecurityError(msg)
}

func (o *clientOps) ReadRemote(path string) ([]byte, error) {
	ctx, cancel := context.WithTimeout(o.ctx, o.timeout)
	defer cancel()
	data, err := o.remote(ctx, path)
	o.full.note(err)
	return data, err
}

func (o *ops) configPath(file string) (string, error) {
	name, rest, ok := strings.Cut(file, "/")
	if !ok || rest != "latest" || name != o.v.name {
		return "", fmt.Errorf("unexpected checksum config file %q", file)
	}
	return filepath.Join(o.state, name, "latest"), nil
}

func (o *ops) ReadConfig(file string) ([]byte, error) {
	if file == "key" {
		return []byte(o.key), nil
	}
	p, err := o.configPath(file)
	if err != nil {
		return nil, err
	}
	return readTreeHead(p)
}

func (o *ops) WriteConfig(file string, old, new []byte) error {
	p, err := o.configPath(file)
	if err != nil {
		return err
	}
	o.mu.Lock()
	defer o.mu.Unlock()
	err = replaceTreeHead(p, old, new)
	o.full.note(err)
	return err
}

// ReadTreeHead returns the latest verified signed tree head of database
// name persisted under stateDir (the Verifier's StateDir), or an empty
// slice when there is none yet.
func ReadTreeHead(stateDir, name string) ([]byte, error) {
	return readTreeHead(filepath.Join(stateDir, name, "latest"))
}

// ReplaceTreeHead replaces the persisted tree head of database name by
// new if it still holds old (compare-and-swap; an empty old means none),
// durably: sumdb.ErrWriteConflict when it holds something else. The caller
// must have verified new and its consistency with old. A Verifier of the
// same directory in this process serializes its own writes; between
// processes the compare and the rename are not one atomic step.
func ReplaceTreeHead(stateDir, name string, old, new []byte) error {
	p := filepath.Join(stateDir, name, "latest")
	if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
		return fmt.Errorf("checksum state: %w", err)
	}
	return replaceTreeHead(p, old, new)
}

func readTreeHead(p string) ([]byte, error) {
	data, err := os.ReadFile(p)
	if errors.Is(err, os.ErrNotExist) {
		return []byte{}, nil
	}
	return data, err
}

func replaceTreeHead(p string, old, new []byte) error {
	cur, err := os.ReadFile(p)
	if err != nil && !errors.Is(err, os.ErrNotExist) {
		return err
	}
	if !bytes.Equal(cur, old) {
		return sumdb.ErrWriteConflict
	}
	return atomicfile.Write(p, new, 0o644) // temp file, fsync, rename, directory fsync
}

// ReadCache reports every file as missing: lookups and tiles are cached by
// Remote (the proxy's store), not twice.
func (o *ops) ReadCache(file string) ([]byte, error) { return nil, os.ErrNotExist }

func (o *ops) WriteCache(file string, data []byte) {}

func (o *ops) Log(msg string) { o.v.log.Debug("checksum database client", "db", o.v.name, "msg", msg) }

func (o *ops) SecurityError(msg string) {
	o.v.log.Error("SECURITY ERROR: checksum database misbehaved (forked or rolled-back tree); verifications against it fail", "db", o.v.name, "detail", msg)
	o.v.metrics.SecurityError()
	_ = o.v.audit.Record(audit.Event{Actor: "verifier", Action: "security-error", Target: o.v.name, Reason: msg})
}
