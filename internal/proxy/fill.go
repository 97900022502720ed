package proxy

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"strings"
	"time"

	"golang.org/x/sync/singleflight"

	"github.com/modproxy/modproxy/internal/artifact"
	"github.com/modproxy/modproxy/internal/checksum"
	"github.com/modproxy/modproxy/internal/errclass"
	"github.com/modproxy/modproxy/internal/storage"
	"github.com/modproxy/modproxy/internal/upstream"
)

// revalidate refreshes req in the background, once at a time per key.
func (s *Service) revalidate(req artifact.Request) {
	s.goBackground(func() {
		_, err, _ := s.fills.Do(req.Key, func() (any, error) {
			seq := s.refreshed.started()
			err := s.fill(context.Background(), req)
			if err == nil {
				s.refreshed.filled(req, seq)
			}
			return seq, err
		})
		if err != nil {
			s.log.Warn("background revalidation failed", "key", req.Key, "err", err)
		}
	})
}

// fillAndOpen fetches req (coalesced with concurrent fetches of the same
// key) and opens the stored result.
func (s *Service) fillAndOpen(ctx context.Context, req artifact.Request) (*Result, error) {
	res, _, err := s.fillAndOpenSeq(ctx, req)
	return res, err
}

// fillAndOpenSeq is fillAndOpen that also returns the count of refreshes
// when the fill it joined or led began (refreshes.started): a fill that
// began before a refresh may hold an answer older than it.
func (s *Service) fillAndOpenSeq(ctx context.Context, req artifact.Request) (*Result, uint64, error) {
	leader := false
	ch := s.fills.DoChan(req.Key, func() (any, error) {
		seq := s.refreshed.started()
		// An immutable file stored since the caller found it missing (by a
		// fill that ended just before this one began: a warming, another
		// client) is not fetched again.
		if req.Immutable() {
			if _, err := s.opts.Store.Stat(ctx, req.Key); err == nil {
				return seq, nil
			}
		}
		leader = true
		done := make(chan error, 1)
		// The fill is detached from the caller; it is tracked for Close.
		if !s.goBackground(func() { done <- s.fillShared(ctx, req) }) {
			return seq, errors.New("shutting down: no new fills")
		}
		err := <-done
		if err == nil {
			s.refreshed.filled(req, seq)
		}
		return seq, err
	})
	var r singleflight.Result
	select {
	case r = <-ch:
	case <-ctx.Done():
		return nil, 0, ctx.Err()
	}
	if r.Err != nil {
		return nil, 0, r.Err
	}
	obj, err := s.opts.Store.Open(ctx, req.Key)
	if err != nil {
		return nil, 0, fmt.Errorf("cache read after fill %s: %w", req.Key, err)
	}
	out := Coalesced
	if leader {
		out = Miss
	}
	seq, _ := r.Val.(uint64)
	return &Result{Object: obj, Outcome: out}, seq, nil
}

// fillShared fills req once across replicas: with a Coordinator, the
// replica that takes the fill lock fills; the others wait for the object
// to appear in the shared store (or the lock to be given up without it,
// then they try in turn). Without a Coordinator, or when it is
// unreachable, it fills locally (per-process coalescing only), which is
// safe because fills are idempotent.
func (s *Service) fillShared(ctx context.Context, req artifact.Request) error {
	c := s.opts.Coordinator
	if c == nil {
		return s.fill(ctx, req)
	}
	ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), s.opts.FillTimeout)
	defer cancel()
	start := s.opts.Now()
	wait := 20 * time.Millisecond
	for {
		lock, ok, err := c.TryLock(ctx, "fill:"+req.Key, 30*time.Second)
		if err != nil {
			s.log.Warn("coordination unavailable: filling without it", "key", req.Key, "err", err)
			s.opts.Metrics.CoordFallback()
			return s.fill(ctx, req)
		}
		if ok {
			defer lock.Release(context.WithoutCancel(ctx))
			if s.filledSince(ctx, req, start) {
				return nil // another replica filled it while we waited
			}
			err := s.fill(ctx, req)
			if err == nil {
				_ = c.Publish(ctx, "filled "+req.Key)
			}
			return err
		}
		// Another replica is filling: wait for its result.
		select {
		case <-ctx.Done():
			return fmt.Errorf("waiting for another replica to fill %s: %w", req.Key, ctx.Err())
		case <-time.After(wait):
		}
		wait = min(wait*2, 500*time.Millisecond)
		if s.filledSince(ctx, req, start) {
			s.opts.Metrics.Outcome(req.Kind.String(), "coalesced_cluster")
			return nil
		}
	}
}

// filledSince reports whether the store holds req, written after start for
// mutable entries (and after the refresh that the fill follows, if any).
func (s *Service) filledSince(ctx context.Context, req artifact.Request, start time.Time) bool {
	obj, err := s.opts.Store.Open(ctx, req.Key)
	if err != nil {
		return false
	}
	defer obj.Close()
	return req.Immutable() || !obj.Info().ModTime.Before(notBefore(ctx, start))
}

// fill fetches req from upstream, validates it and stores it. It runs
// detached from ctx's cancellation, bounded by FillTimeout.
func (s *Service) fill(ctx context.Context, req artifact.Request) error {
	ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), s.opts.FillTimeout)
	defer cancel()
	up := s.opts.Upstream
	if s.opts.Route != nil && req.Kind != artifact.SumDB {
		if r := s.opts.Route(req.Module); r != nil {
			up = r
		}
	}
	if req.Kind == artifact.SumDB {
		f, ok := s.opts.SumDB[req.SumDBName]
		if !ok {
			return &NotFoundError{Key: req.Key, Msg: fmt.Sprintf("checksum database %s is not proxied", req.SumDBName)}
		}
		up = f
	}
	start := s.opts.Now()
	s.opts.Metrics.FillStarted()
	defer s.opts.Metrics.FillDone()
	resp, err := up.Fetch(ctx, strings.TrimPrefix(req.Key, s.opts.MutablePrefix))
	if err != nil {
		s.fetchFailed(req, err)
		return err
	}
	defer resp.Body.Close()
	var info storage.Info
	if req.Kind == artifact.Zip {
		info, err = s.fillZip(ctx, req, resp)
	} else {
		info, err = s.fillSmall(ctx, req, resp)
	}
	if err != nil {
		var ire *InvalidResponseError
		switch {
		case errclass.Of(err) == errclass.StoreFull:
			s.storeFull(req, err)
		case errors.As(err, &ire):
			s.opts.Metrics.UpstreamError("invalid")
			s.log.Error("rejected invalid upstream answer", "key", req.Key, "err", err)
		}
		return err
	}
	s.neg.del(req.Key)
	s.log.Debug("filled", "key", req.Key, "from", resp.Source, "bytes", info.Size, "took", s.opts.Now().Sub(start))
	return nil
}

// fetchFailed counts a failed upstream fetch by what it means, and
// remembers a definitive answer (see definitive) in the negative cache.
// An upstream's 400 is counted and remembered like a not-found: it is the
// upstream's final word on the path, and clients get a 404 for it (see
// errclass.Invalid). A full local store (an upstream body spooled to
// disk) is not the upstream's failure.
func (s *Service) fetchFailed(req artifact.Request, err error) {
	c := errclass.Of(err)
	var le *upstream.LocalError
	switch {
	case c == errclass.StoreFull:
		s.storeFull(req, err)
		return
	case errors.As(err, &le):
		// This machine failed, not the upstream: not an upstream error,
		// never remembered.
		s.log.Error("fetch failed locally", "key", req.Key, "err", err)
		return
	}
	switch c {
	case errclass.NotExist, errclass.Invalid:
		s.opts.Metrics.UpstreamError("not_found")
	case errclass.Denied, errclass.Gone:
		s.opts.Metrics.UpstreamError("denied")
	case errclass.Timeout:
		s.opts.Metrics.UpstreamError("timeout")
	default:
		s.opts.Metrics.UpstreamError("unavailable")
	}
	if definitive(err) {
		mod := req.Module // a refresh of it forgets the module's own answers
		if req.Kind == artifact.SumDB {
			mod = "" // not the checksum database's
		}
		s.neg.put(req.Key, mod, err.Error(), c, s.opts.Now().Add(s.opts.Policy.NegativeTTL))
	}
}

// storeFull logs and counts a fill that could not store its answer
// because local storage is full. Hits are still served.
func (s *Service) storeFull(req artifact.Request, err error) {
	s.opts.Metrics.StoreFull(req.Kind.String())
	s.log.Error("cache storage is full: the answer was not stored", "key", req.Key, "err", err)
}

// definitive reports whether a failed fetch is the upstream's final word
// on the path, which neither a retry nor a stale copy should override: not
// found (404, 410), or refused (400, 403). Other failures (unavailable,
// timed out, invalid content, a full store) may heal.
func definitive(err error) bool {
	switch errclass.Of(err).Kind() {
	case errclass.NotExist, errclass.Invalid, errclass.Denied:
		return true
	}
	return false
}

func (s *Service) fillSmall(ctx context.Context, req artifact.Request, resp *upstream.Response) (storage.Info, error) {
	data, err := io.ReadAll(resp.Body)
	if err != nil {
		return storage.Info{}, err
	}
	if err := validateSmall(req, data); err != nil {
		ire := &InvalidResponseError{Key: req.Key, Source: resp.Source, Err: err}
		if req.Kind == artifact.Mod {
			s.reject(ctx, req, resp.Source, int64(len(data)), "", ire, func() io.Reader { return bytes.NewReader(data) })
		}
		return storage.Info{}, ire
	}
	if req.Kind == artifact.Mod {
		h1, err := checksum.HashGoMod(data)
		if err != nil {
			return storage.Info{}, err
		}
		if err := s.admit(ctx, req, resp.Source, true, h1, int64(len(data)), func() io.Reader { return bytes.NewReader(data) }); err != nil {
			return storage.Info{}, err
		}
		return s.storeVerified(ctx, req.Key, h1, data, "")
	}
	return s.put(ctx, req.Key, bytes.NewReader(data))
}

// put stores an object and tells the index.
func (s *Service) put(ctx context.Context, key string, r io.Reader) (storage.Info, error) {
	info, err := s.opts.Store.Put(ctx, key, r)
	if err == nil && s.opts.Index != nil {
		s.opts.Index.Stored(key, info.Size, s.opts.Now())
	}
	return info, err
}

func (s *Service) fillZip(ctx context.Context, req artifact.Request, resp *upstream.Response) (storage.Info, error) {
	f, n := resp.File, resp.Size
	if f == nil {
		var err error
		f, err = os.CreateTemp(s.opts.TempDir, "fill-*.zip")
		if err != nil {
			return storage.Info{}, fmt.Errorf("spool %s: %w", req.Key, err)
		}
		defer func() {
			f.Close()
			os.Remove(f.Name())
		}()
		n, err = io.Copy(f, resp.Body)
		if err != nil {
			return storage.Info{}, err
		}
		if resp.Size >= 0 && n != resp.Size {
			return storage.Info{}, &InvalidResponseError{Key: req.Key, Source: resp.Source, Err: fmt.Errorf("body has %d bytes, Content-Length said %d", n, resp.Size)}
		}
	}
	content := func() io.Reader { return io.NewSectionReader(f, 0, n) }
	release, err := s.zipSlot(ctx, req.Key)
	if err != nil {
		return storage.Info{}, fmt.Errorf("waiting to check %s: %w", req.Key, err)
	}
	if s.zipHooks.check != nil {
		s.zipHooks.check(req.Key)
	}
	h1, err := validateZip(req, f)
	release()
	if err != nil {
		ire := &InvalidResponseError{Key: req.Key, Source: resp.Source, Err: err}
		s.reject(ctx, req, resp.Source, n, "", ire, content)
		return storage.Info{}, ire
	}
	if err := s.admit(ctx, req, resp.Source, false, h1, n, content); err != nil {
		return storage.Info{}, err
	}
	return s.storeVerified(ctx, req.Key, h1, nil, f.Name())
}

// zipSlot waits for one of the ZipChecks slots of CPU-heavy zip work
// (zip.CheckZip and checksum.HashZipFile over a spooled file), so that fills
// leave a CPU for serving hits; it returns the release, or ctx's error.
// Nothing waits on the network while holding a slot: the zip is spooled
// before, and verified and stored after.
func (s *Service) zipSlot(ctx context.Context, key string) (func(), error) {
	select {
	case s.zipSlots <- struct{}{}:
	default:
		if s.zipHooks.wait != nil {
			s.zipHooks.wait(key)
		}
		select {
		case s.zipSlots <- struct{}{}:
		case <-ctx.Done():
			return nil, ctx.Err()
		}
	}
	return func() { <-s.zipSlots }, nil
}
