package proxy

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"strings"
	"time"
	"unicode/utf8"

	"golang.org/x/mod/modfile"
	"golang.org/x/mod/semver"
	"golang.org/x/mod/sumdb/tlog"
	modzip "golang.org/x/mod/zip"

	"github.com/modproxy/modproxy/internal/artifact"
	"github.com/modproxy/modproxy/internal/audit"
	"github.com/modproxy/modproxy/internal/checksum"
	"github.com/modproxy/modproxy/internal/errclass"
	"github.com/modproxy/modproxy/internal/event"
	"github.com/modproxy/modproxy/internal/storage"
)

// InvalidResponseError is an upstream answer that failed validation. It is
// never stored; its class is errclass.Integrity.
type InvalidResponseError struct {
	Key    string
	Source string
	Err    error // what is wrong with the answer
}

func (e *InvalidResponseError) Error() string {
	return fmt.Sprintf("upstream %s answered %s with invalid content: %v", e.Source, e.Key, e.Err)
}

func (e *InvalidResponseError) Unwrap() error { return e.Err }

// Class implements errclass.Classer.
func (e *InvalidResponseError) Class() errclass.Class { return errclass.Integrity }

// infoJSON is the .info / @latest document.
type infoJSON struct {
	Version string
	Time    time.Time
}

// validateSmall checks a non-zip answer before it is admitted.
func validateSmall(req artifact.Request, data []byte) error {
	switch req.Kind {
	case artifact.Info, artifact.Latest, artifact.Query:
		var info infoJSON
		if err := json.Unmarshal(data, &info); err != nil {
			return fmt.Errorf("not a JSON version info: %w", err)
		}
		if !artifact.IsCanonical(info.Version) {
			return fmt.Errorf("info names %q, not a canonical version", info.Version)
		}
		if req.Kind == artifact.Info && info.Version != req.Version {
			return fmt.Errorf("proxy returned info for version %s instead of requested version %s", info.Version, req.Version)
		}
	case artifact.Mod:
		if _, err := modfile.ParseLax("go.mod", data, nil); err != nil {
			return fmt.Errorf("go.mod does not parse: %w", err)
		}
	case artifact.List:
		if !utf8.Valid(data) {
			return fmt.Errorf("version list is not UTF-8 text")
		}
		for line := range strings.SplitSeq(string(data), "\n") {
			f := strings.Fields(line)
			if len(f) > 0 && !semver.IsValid(f[0]) {
				return fmt.Errorf("version list has invalid version %q", upstreamSanitize(f[0]))
			}
		}
	case artifact.SumDB:
		if strings.HasPrefix(req.SumDBPath, "tile/") {
			t, err := tlog.ParseTilePath(req.SumDBPath)
			if err != nil {
				return err
			}
			if t.L >= 0 && len(data) != t.W*tlog.HashSize {
				return fmt.Errorf("tile of width %d has %d bytes, want %d", t.W, len(data), t.W*tlog.HashSize)
			}
		}
		if len(bytes.TrimSpace(data)) == 0 && !strings.HasPrefix(req.SumDBPath, "tile/") {
			return fmt.Errorf("empty answer")
		}
	}
	return nil
}

// validateZip checks a spooled zip with golang.org/x/mod/zip.CheckZip and
// reads every file in it (which verifies each entry's CRC-32), returning
// its h1: hash.
func validateZip(req artifact.Request, f *os.File) (string, error) {
	if _, err := modzip.CheckZip(req.ModuleVersion(), f.Name()); err != nil {
		return "", fmt.Errorf("module zip: %w", err)
	}
	h1, err := checksum.HashZipFile(f.Name())
	if err != nil {
		return "", fmt.Errorf("module zip: %w", err)
	}
	return h1, nil
}

func upstreamSanitize(s string) string {
	if len(s) > 80 {
		s = s[:80] + "..."
	}
	return fmt.Sprintf("%q", s)
}

// admit verifies the hash of a canonical .mod or .zip before it is stored
// (storeVerified records the hash with it). Content that fails
// verification is quarantined and audited, never stored.
func (s *Service) admit(ctx context.Context, req artifact.Request, source string, goMod bool, h1 string, size int64, content func() io.Reader) error {
	if s.opts.Verifier == nil {
		return nil
	}
	err := s.opts.Verifier.Verify(ctx, req.Module, req.Version, goMod, h1)
	switch {
	case err == nil, errors.Is(err, checksum.ErrPrivate):
		return nil
	case errclass.Of(err).Kind() == errclass.Integrity:
		s.reject(ctx, req, source, size, h1, err, content)
	}
	return err
}

// storeVerified stores an admitted .mod (data) or .zip (the spooled file
// src, moved in when the store can) with its hash in the sidecar KEY.h1.
//
// On a storage.BatchWriter both land in one durable step: the sidecar is
// written unsynced, the object's data is synced, both are renamed into
// place and their directory is synced once. After a crash the object is
// either absent or whole (its data was synced before its rename, and it is
// renamed only after verification passed); the sidecar may be absent, or
// empty or zero-filled, and a sidecar that is not a valid h1: hash counts
// as none (Service.hash, scrub): the object is then served without its hash
// headers, as objects stored before hashes were recorded are. A sidecar
// without its object is overwritten by the next fill.
//
// On other stores (or when the batch is refused) the sidecar is Put
// before the object, so a stored object always has its recorded hash.
func (s *Service) storeVerified(ctx context.Context, key, h1 string, data []byte, src string) (storage.Info, error) {
	if bw, ok := s.opts.Store.(storage.BatchWriter); ok {
		infos, err := bw.WriteBatch(ctx, []storage.Entry{{Key: key + ".h1", Data: []byte(h1), Unsynced: true}, {Key: key, Data: data, Src: src}})
		if err == nil {
			s.hashes.put(key, h1, infos[1])
			if s.opts.Index != nil {
				now := s.opts.Now()
				for _, in := range infos {
					s.opts.Index.Stored(in.Key, in.Size, now)
				}
			}
			return infos[1], nil
		}
		s.log.Debug("batch write refused: writing the hash and the object one by one", "key", key, "err", err)
	}
	if _, err := s.put(ctx, key+".h1", bytes.NewReader([]byte(h1))); err != nil {
		return storage.Info{}, err
	}
	if src != "" {
		// On a local store the verified spool file is renamed into place
		// instead of being copied (storage.FileMover syncs it first). When
		// it cannot be (another file system: storage.ErrNotSupported, or
		// any other failure, which leaves the spool in place), it is
		// copied.
		if mv, ok := s.opts.Store.(storage.FileMover); ok {
			if info, err := mv.MoveIn(ctx, src, key); err == nil {
				if s.opts.Index != nil {
					s.opts.Index.Stored(key, info.Size, s.opts.Now())
				}
				return info, nil
			}
		}
		f, err := os.Open(src)
		if err != nil {
			return storage.Info{}, err
		}
		defer f.Close()
		return s.put(ctx, key, f)
	}
	return s.put(ctx, key, bytes.NewReader(data))
}

// reject quarantines and audits canonical module content that failed
// validation or verification. The audit record names the identity ctx
// carries (for a coalesced fill, the first requester's).
func (s *Service) reject(ctx context.Context, req artifact.Request, source string, size int64, h1 string, verr error, content func() io.Reader) {
	s.log.Error("rejected module content that failed checksum verification", "key", req.Key, "upstream", source, "err", verr)
	hashes := map[string]string{}
	if h1 != "" {
		hashes["got"] = h1
	}
	var me *checksum.MismatchError
	if errors.As(verr, &me) {
		hashes["want"] = me.Want
	}
	ev := audit.Event{Actor: "verifier", Action: "reject", Target: req.Module + "@" + req.Version, Reason: verr.Error() + " (from " + source + ")", Bytes: size, Hashes: hashes}
	if s.opts.Quarantine != nil {
		if p, err := s.opts.Quarantine.Keep(req.Key, content()); err != nil {
			s.log.Error("quarantine failed", "key", req.Key, "err", err)
		} else {
			s.opts.Metrics.Quarantined()
			ev.Action = "quarantine"
			ev.Reason += "; kept in " + p
		}
	}
	if err := s.opts.Audit.RecordContext(ctx, ev); err != nil {
		s.log.Error("audit failed", "err", err)
	}
	if me != nil {
		s.opts.Events.Emit(event.Event{Type: event.Mismatch, Time: s.opts.Now().UTC(), Module: req.Module, Version: req.Version,
			Upstream: source, Reason: verr.Error()})
	}
}
