package toolchain

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	iofs "io/fs"
	"time"
)

// Store keys of the two listings the site answers.
const (
	ListingKey    = "dl/listing.json"     // ?mode=json: the current releases
	ListingAllKey = "dl/listing-all.json" // ?mode=json&include=all: every release
)

// Listing is the site's JSON listing as it answered, with its freshness.
type Listing struct {
	Data    []byte
	ModTime time.Time // when it was fetched from the site
	Age     time.Duration
	Outcome Outcome
	// Warning, for a listing past its TTL, says why it is served
	// (RFC 9111 Warning: 110 or 111).
	Warning string
}

// Listing returns the site's listing: every release (all, the site's
// "?mode=json&include=all") or the current ones ("?mode=json"). See the
// package documentation for freshness and cache-only mode.
func (s *Service) Listing(ctx context.Context, all, cacheOnly bool) (*Listing, error) {
	return s.listing(ctx, all, false, cacheOnly)
}

func listingKey(all bool) string {
	if all {
		return ListingAllKey
	}
	return ListingKey
}

func listingQuery(all bool) string {
	if all {
		return "?mode=json&include=all"
	}
	return "?mode=json"
}

// listing returns a listing, fetching it when it is missing or past its
// TTL; with force, also when it is fresh but older than RefreshAfter.
func (s *Service) listing(ctx context.Context, all, force, cacheOnly bool) (*Listing, error) {
	key := listingKey(all)
	stored, err := s.readListing(ctx, key)
	if err != nil {
		return nil, err
	}
	if stored != nil {
		stored.Age = max(0, s.opts.Now().Sub(stored.ModTime))
		fresh := stored.Age < s.opts.TTL && (!force || stored.Age < s.opts.RefreshAfter)
		if s.cacheOnly(cacheOnly) || fresh {
			if stored.Age >= s.opts.TTL {
				stored.Outcome, stored.Warning = Stale, `110 - "Response is Stale"`
			}
			return stored, nil
		}
	} else if s.cacheOnly(cacheOnly) {
		return nil, &NotFoundError{File: listingQuery(all), Msg: "the listing is not in the cache (cache-only mode: nothing is fetched from the distribution site)"}
	}
	leader, ferr := s.fill(ctx, key, false, func(ctx context.Context) error { return s.fetchListing(ctx, all) })
	if ferr == nil {
		l, err := s.readListing(ctx, key)
		if err != nil {
			return nil, err
		}
		if l == nil {
			return nil, fmt.Errorf("cache read after fetch %s: %w", key, iofs.ErrNotExist)
		}
		l.Outcome = Coalesced
		if leader {
			l.Outcome = Miss
		}
		return l, nil
	}
	if stored != nil && ctx.Err() == nil && stored.Age < s.opts.StaleIfError {
		s.log.Warn("serving a stale toolchain listing: the distribution site failed", "key", key, "age", stored.Age.Round(time.Second), "err", ferr)
		stored.Outcome, stored.Warning = Stale, `111 - "Revalidation Failed"`
		return stored, nil
	}
	return nil, ferr
}

// readListing returns the stored listing under key, or nil when there is none.
func (s *Service) readListing(ctx context.Context, key string) (*Listing, error) {
	o, err := s.opts.Store.Open(ctx, key)
	if errors.Is(err, iofs.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("cache read %s: %w", key, err)
	}
	defer o.Close()
	data, err := io.ReadAll(io.LimitReader(o, s.opts.MaxListingSize))
	if err != nil {
		return nil, fmt.Errorf("cache read %s: %w", key, err)
	}
	if s.opts.Index != nil {
		s.opts.Index.Touch(key, s.opts.Now())
	}
	return &Listing{Data: data, ModTime: o.Info().ModTime, Outcome: Hit}, nil
}

// fetchListing fetches a listing from the site, checks that it is the
// site's JSON and stores it.
func (s *Service) fetchListing(ctx context.Context, all bool) error {
	q := listingQuery(all)
	resp, err := s.opts.Site.Fetch(ctx, q)
	if err != nil {
		s.opts.Metrics.ToolchainFetch("listing", fetchResult(err))
		return err
	}
	defer resp.Body.Close()
	data, err := io.ReadAll(io.LimitReader(resp.Body, s.opts.MaxListingSize+1))
	if err == nil && int64(len(data)) > s.opts.MaxListingSize {
		err = &InvalidError{What: "listing " + q, Source: resp.Source, Err: fmt.Errorf("larger than %d bytes", s.opts.MaxListingSize)}
	}
	if err == nil {
		if _, perr := parseListing(data); perr != nil {
			err = &InvalidError{What: "listing " + q, Source: resp.Source, Err: perr}
		}
	}
	if err != nil {
		s.opts.Metrics.ToolchainFetch("listing", fetchResult(err))
		return err
	}
	key := listingKey(all)
	info, err := s.opts.Store.Put(ctx, key, bytes.NewReader(data))
	if err != nil {
		return fmt.Errorf("storing %s: %w", key, err)
	}
	s.opts.Metrics.ToolchainFetch("listing", "ok")
	if s.opts.Index != nil {
		s.opts.Index.Stored(key, info.Size, s.opts.Now())
	}
	return nil
}

// file is one file of a release in the site's listing.
type file struct {
	Filename string `json:"filename"`
	Version  string `json:"version"`
	SHA256   string `json:"sha256"`
	Size     int64  `json:"size"`
}

// parseListing reads the site's listing (a JSON array of releases, each
// with its files) into its files by name.
func parseListing(data []byte) (map[string]file, error) {
	if t := bytes.TrimSpace(data); len(t) == 0 || t[0] != '[' {
		return nil, errors.New("not a JSON array of releases")
	}
	var releases []struct {
		Version string `json:"version"`
		Files   []file `json:"files"`
	}
	if err := json.Unmarshal(data, &releases); err != nil {
		return nil, err
	}
	files := map[string]file{}
	for _, r := range releases {
		for _, f := range r.Files {
			if f.Filename != "" {
				files[f.Filename] = f
			}
		}
	}
	return files, nil
}

// parsedListing is a listing's files, kept for the stored listing they
// were read from.
type parsedListing struct {
	modTime time.Time
	size    int
	files   map[string]file
}

// files returns the files of a stored listing, parsing it only when it
// changed since the last parse.
func (s *Service) files(key string, l *Listing) (map[string]file, error) {
	if p, ok := s.parsed.Load(key); ok {
		if p := p.(*parsedListing); p.modTime.Equal(l.ModTime) && p.size == len(l.Data) {
			return p.files, nil
		}
	}
	files, err := parseListing(l.Data)
	if err != nil {
		return nil, &InvalidError{What: "stored " + key, Source: "the cache", Err: err}
	}
	s.parsed.Store(key, &parsedListing{modTime: l.ModTime, size: len(l.Data), files: files})
	return files, nil
}

// lookup returns the listing's entry for name, from the full listing;
// when that does not name it and was not just fetched, it is fetched once
// more (see Options.RefreshAfter). A file it does not name is a
// *NotFoundError.
func (s *Service) lookup(ctx context.Context, name string, cacheOnly bool) (file, error) {
	for _, force := range []bool{false, true} {
		l, err := s.listing(ctx, true, force, cacheOnly)
		if err != nil {
			return file{}, err
		}
		files, err := s.files(ListingAllKey, l)
		if err != nil {
			return file{}, err
		}
		if f, ok := files[name]; ok {
			return f, nil
		}
		if l.Outcome == Miss || l.Outcome == Coalesced || s.cacheOnly(cacheOnly) {
			break // just fetched, or nothing may be
		}
	}
	return file{}, &NotFoundError{File: name, Msg: "not named by the distribution site's listing"}
}
