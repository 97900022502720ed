package toolchain

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	iofs "io/fs"
	"os"
	"strings"

	"github.com/modproxy/modproxy/internal/audit"
	"github.com/modproxy/modproxy/internal/errclass"
	"github.com/modproxy/modproxy/internal/event"
	"github.com/modproxy/modproxy/internal/storage"
)

// Archive is a stored archive to serve. The caller must Close it.
type Archive struct {
	storage.Object
	// SHA256 is the recorded hash (hex), verified against the listing when
	// the archive was stored; "" when the record is missing or unreadable.
	SHA256  string
	Outcome Outcome
}

// archiveSuffixes are the kinds of files the distribution site offers.
var archiveSuffixes = []string{".tar.gz", ".zip", ".msi", ".pkg"}

// ValidName reports whether name can be a file of the distribution site:
// "go" followed by letters, digits, '.', '-' and '_' (no "..", at most
// 128 bytes), ending in .tar.gz, .zip, .msi or .pkg. Whether the site
// offers it is for its listing to say.
func ValidName(name string) bool {
	if len(name) > 128 || !strings.HasPrefix(name, "go") || strings.Contains(name, "..") {
		return false
	}
	for _, c := range []byte(name) {
		if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '.' || c == '-' || c == '_') {
			return false
		}
	}
	for _, suf := range archiveSuffixes {
		if strings.HasSuffix(name, suf) && len(name) > len("go")+len(suf) {
			return true
		}
	}
	return false
}

// ArchiveKey is the store key of an archive; its SHA-256 is stored under
// ArchiveKey(name)+".sha256".
func ArchiveKey(name string) string { return "dl/" + name }

func invalidName(name string) error {
	return &NotFoundError{File: name, Msg: "not a Go distribution file name (go1.X.Y.OS-ARCH.tar.gz, .zip, .msi or .pkg)"}
}

// Archive returns the archive name, from the store or, on its first
// request, fetched from the site and verified against the listing (see
// the package documentation).
func (s *Service) Archive(ctx context.Context, name string, cacheOnly bool) (*Archive, error) {
	if !ValidName(name) {
		return nil, invalidName(name)
	}
	if a, err := s.openArchive(ctx, name); a != nil || err != nil {
		return a, err
	}
	if s.cacheOnly(cacheOnly) {
		return nil, &NotFoundError{File: name, Msg: "not in the cache (cache-only mode: nothing is fetched from the distribution site)"}
	}
	leader, err := s.fill(ctx, ArchiveKey(name), true, func(ctx context.Context) error { return s.fetchArchive(ctx, name) })
	if err != nil {
		return nil, err
	}
	a, err := s.openArchive(ctx, name)
	if err == nil && a == nil {
		err = fmt.Errorf("cache read after fetch %s: %w", ArchiveKey(name), iofs.ErrNotExist)
	}
	if err != nil {
		return nil, err
	}
	a.Outcome = Coalesced
	if leader {
		a.Outcome = Miss
	}
	return a, nil
}

// SHA256 returns the SHA-256 (hex) of the archive name: the one recorded
// when it was stored, else the listing's (fetched as Listing does).
func (s *Service) SHA256(ctx context.Context, name string, cacheOnly bool) (string, error) {
	if !ValidName(name) {
		return "", invalidName(name)
	}
	if h := s.recorded(ctx, name); h != "" {
		return h, nil
	}
	f, err := s.lookup(ctx, name, cacheOnly)
	if err != nil {
		return "", err
	}
	h := strings.ToLower(f.SHA256)
	if !validSHA256(h) {
		return "", &InvalidError{What: name, Source: "the listing", Err: fmt.Errorf("no usable sha256 (%q)", f.SHA256)}
	}
	return h, nil
}

// openArchive opens the stored archive, or returns nil, nil when there is none.
func (s *Service) openArchive(ctx context.Context, name string) (*Archive, error) {
	key := ArchiveKey(name)
	obj, err := s.opts.Store.Open(ctx, key)
	if errors.Is(err, iofs.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("cache read %s: %w", key, err)
	}
	if s.opts.Index != nil {
		s.opts.Index.Touch(key, s.opts.Now())
	}
	return &Archive{Object: obj, SHA256: s.recorded(ctx, name), Outcome: Hit}, nil
}

// recorded returns the stored SHA-256 of name, or "" when there is no
// valid one (none, or one a crash left empty).
func (s *Service) recorded(ctx context.Context, name string) string {
	b, err := storage.ReadSmall(ctx, s.opts.Store, ArchiveKey(name)+".sha256", 128)
	if h := strings.TrimSpace(string(b)); err == nil && validSHA256(h) {
		return h
	}
	return ""
}

func validSHA256(h string) bool {
	if len(h) != 64 {
		return false
	}
	_, err := hex.DecodeString(h)
	return err == nil && h == strings.ToLower(h)
}

// fetchArchive fetches name from the site into a spool file while
// hashing it, and stores it when the hash is the listing's.
func (s *Service) fetchArchive(ctx context.Context, name string) error {
	f, err := s.lookup(ctx, name, false)
	if err != nil {
		return err
	}
	want := strings.ToLower(f.SHA256)
	if !validSHA256(want) {
		return &InvalidError{What: name, Source: "the listing", Err: fmt.Errorf("no usable sha256 (%q)", f.SHA256)}
	}
	limit := s.opts.MaxSize
	if f.Size > limit {
		return &TooLargeError{File: name, Size: f.Size, Limit: limit}
	}
	resp, err := s.opts.Site.Fetch(ctx, name)
	if err != nil {
		s.opts.Metrics.ToolchainFetch("archive", fetchResult(err))
		return err
	}
	defer resp.Body.Close()
	if resp.Size > limit {
		return &TooLargeError{File: name, Size: resp.Size, Limit: limit}
	}
	spool, err := os.CreateTemp(s.opts.TempDir, "dl-*.spool")
	if err != nil {
		return fmt.Errorf("spooling %s: %w", name, err)
	}
	defer func() {
		spool.Close()
		os.Remove(spool.Name()) // gone already when it was moved in
	}()
	h := sha256.New()
	n, err := io.Copy(io.MultiWriter(spool, h), io.LimitReader(resp.Body, limit+1))
	switch {
	case err != nil:
		err = fmt.Errorf("fetching %s: %w", name, err)
	case n > limit:
		err = &TooLargeError{File: name, Size: n, Limit: limit}
	case resp.Size >= 0 && n != resp.Size:
		err = &InvalidError{What: name, Source: resp.Source, Err: fmt.Errorf("body has %d bytes, Content-Length said %d", n, resp.Size)}
	}
	s.opts.Metrics.ToolchainBytes(n)
	if err != nil {
		s.opts.Metrics.ToolchainFetch("archive", fetchResult(err))
		return err
	}
	if got := hex.EncodeToString(h.Sum(nil)); got != want {
		merr := &MismatchError{File: name, Source: resp.Source, Want: want, Got: got}
		s.mismatch(f, n, merr)
		return merr
	}
	s.opts.Metrics.ToolchainFetch("archive", "ok")
	return s.store(ctx, name, want, spool)
}

// store records the verified hash, then moves the spool in (or copies it
// when the store cannot take it by rename).
func (s *Service) store(ctx context.Context, name, sum string, spool *os.File) error {
	key := ArchiveKey(name)
	hinfo, err := s.opts.Store.Put(ctx, key+".sha256", strings.NewReader(sum))
	if err != nil {
		return fmt.Errorf("storing %s.sha256: %w", key, err)
	}
	var info storage.Info
	if mv, ok := s.opts.Store.(storage.FileMover); ok {
		info, err = mv.MoveIn(ctx, spool.Name(), key)
	} else {
		err = storage.ErrNotSupported
	}
	if errors.Is(err, storage.ErrNotSupported) {
		if _, err = spool.Seek(0, io.SeekStart); err == nil {
			info, err = s.opts.Store.Put(ctx, key, spool)
		}
	}
	if err != nil {
		return fmt.Errorf("storing %s: %w", key, err)
	}
	if s.opts.Index != nil {
		now := s.opts.Now()
		s.opts.Index.Stored(hinfo.Key, hinfo.Size, now)
		s.opts.Index.Stored(info.Key, info.Size, now)
	}
	s.log.Info("toolchain archive stored", "key", key, "bytes", info.Size, "sha256", sum)
	if _, err := s.trim(ctx, name); err != nil {
		s.log.Error("toolchain archives over dl.max_total not evicted", "err", err)
	}
	return nil
}

// mismatch reports an archive refused for its hash: log, metric, audit
// record, event.
func (s *Service) mismatch(f file, size int64, err *MismatchError) {
	s.opts.Metrics.ToolchainFetch("archive", "mismatch")
	s.opts.Metrics.ToolchainMismatch()
	s.log.Error("SECURITY: toolchain archive refused: its sha256 is not the listing's", "file", err.File, "from", err.Source, "got", err.Got, "want", err.Want)
	if s.opts.Audit != nil {
		if aerr := s.opts.Audit.Record(audit.Event{Time: s.opts.Now(), Actor: "toolchain", Action: "reject", Target: err.File,
			Reason: err.Error(), Bytes: size, Hashes: map[string]string{"got": "sha256:" + err.Got, "want": "sha256:" + err.Want}}); aerr != nil {
			s.log.Error("audit record failed", "err", aerr)
		}
	}
	s.opts.Events.Emit(event.Event{Type: event.Mismatch, Time: s.opts.Now(), Version: f.Version, Upstream: err.Source, Reason: err.Error()})
}

// fetchResult is the metrics result of a failed fetch.
func fetchResult(err error) string {
	switch errclass.Of(err) {
	case errclass.NotExist:
		return "not_found"
	case errclass.Integrity:
		return "invalid"
	}
	return "error"
}
