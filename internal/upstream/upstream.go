// Package upstream defines how modproxy fetches protocol files from the
// servers it proxies, the error classes of such fetches, and the GOPROXY
// list semantics that join several upstreams.
//
// Errors: a fetch fails with an *Error, whose class (errclass, see
// Error.Class) is decided here: not found (an upstream's 404 or 410, or an
// adapter's NotExist; then errors.Is(err, fs.ErrNotExist) is true too),
// denied (403), invalid (400), and otherwise unavailable (connection
// errors, timeouts, other statuses, oversized bodies). Error text from
// upstreams is bounded and sanitized before it reaches an error message.
package upstream

import (
	"context"
	"errors"
	"fmt"
	"io"
	iofs "io/fs"
	"net/http"
	"os"
	"strings"
	"time"
	"unicode"
)

// Fetcher fetches a protocol file from an upstream.
type Fetcher interface {
	// Fetch fetches path, an escaped protocol path relative to the proxy
	// base ("example.com/a/@v/list", "sumdb/sum.example/latest"). The caller
	// must close Body. Body reads are bounded by the fetch deadline and size
	// limit of the implementation and fail with an *Error past them.
	Fetch(ctx context.Context, path string) (*Response, error)
}

// Response is a successful (200) upstream answer.
type Response struct {
	Body   io.ReadCloser
	Size   int64  // Content-Length, or -1 when unknown
	Source string // the upstream that answered, for logs
	// File is set when the body has already been read completely into a
	// temporary file (then Body reads it and Close removes it): callers
	// may use it directly instead of spooling again.
	File *os.File
}

// ErrTooLarge is wrapped by errors for bodies over the size limit.
var ErrTooLarge = errors.New("response too large")

// Error is a failed upstream fetch.
type Error struct {
	Upstream string // the upstream's base URL without credentials
	Path     string
	// Status is the HTTP status the upstream answered, a fact about its
	// answer; 0 when no HTTP response was received (transport failures,
	// adapters that speak no HTTP).
	Status int
	// NotExist is set by adapters without HTTP statuses when the module,
	// version or file does not exist (a "," list moves on).
	NotExist bool
	Msg      string // sanitized upstream message or transport error summary
	Timeout  bool   // the fetch ran out of time
	// RetryAfter is the upstream's Retry-After, when it sent one.
	RetryAfter time.Duration
	// BreakerOpen is set when the upstream was skipped because its circuit
	// breaker is open; a Chain moves past such a link whatever its separator.
	BreakerOpen bool
	Err         error // underlying error, may be nil
}

func (e *Error) Error() string {
	var b strings.Builder
	fmt.Fprintf(&b, "%s/%s: ", e.Upstream, e.Path)
	if e.Status != 0 {
		fmt.Fprintf(&b, "%d %s", e.Status, http.StatusText(e.Status))
		if e.Msg != "" {
			b.WriteString(": " + e.Msg)
		}
	} else {
		b.WriteString(e.Msg)
	}
	return b.String()
}

// Unwrap makes not-found answers fs.ErrNotExist and exposes Err.
func (e *Error) Unwrap() []error {
	var errs []error
	if e.NotFound() {
		errs = append(errs, iofs.ErrNotExist)
	}
	if e.Err != nil {
		errs = append(errs, e.Err)
	}
	return errs
}

// NotFound reports whether the upstream answered 404 or 410, or the
// adapter found nothing (NotExist).
func (e *Error) NotFound() bool {
	return e.NotExist || e.Status == http.StatusNotFound || e.Status == http.StatusGone
}

// Transient reports whether retrying later may succeed: transport errors,
// timeouts, 429 and 5xx.
func (e *Error) Transient() bool {
	if e.NotFound() || errors.Is(e.Err, ErrTooLarge) {
		return false
	}
	return e.Status == 0 || e.Status == http.StatusTooManyRequests || e.Status >= 500
}

// Sanitize bounds upstream-provided text to one line of at most max
// printable characters.
func Sanitize(s string, max int) string {
	s, _, _ = strings.Cut(strings.TrimSpace(s), "\n")
	s = strings.Map(func(r rune) rune {
		if !unicode.IsPrint(r) {
			return -1
		}
		return r
	}, s)
	if len(s) > max {
		s = s[:max] + "..."
	}
	return strings.TrimSpace(s)
}

// Link is one element of a chain and the rule for moving past it.
type Link struct {
	Fetcher Fetcher
	// AnyError: move to the next link on any error ("|" in GOPROXY);
	// otherwise only on not-found (",").
	AnyError bool
}

// Chain tries its links in order with the go command's GOPROXY semantics.
// A link whose circuit breaker is open is skipped whatever its separator;
// a *LocalError (this machine failed, e.g. its disk is full) ends the chain
// whatever its separator, since every other link would fail the same way.
// It is safe for concurrent use if its Fetchers are. (Hedging a chain's
// requests is a policy of upstream/resilient.)
type Chain struct {
	Links []Link
}

// Fetch implements Fetcher. When every link fails, it returns the most
// informative error, ranked as the go command ranks them: a failure that
// is not "not found" beats a link skipped because its breaker is open,
// which beats "not found"; within a rank the later error wins. A skipped
// link is one that could not be asked, not one that does not know the
// path: a later link's "not found" does not make the answer "not found"
// (the go command, had it asked the failing link, would have stopped at
// its error), so that a cached copy is served stale rather than dropped,
// and nothing is remembered as missing while an upstream is down. (The go
// command also ranks a "direct" error above all others; a Chain does not
// know which link is direct.)
func (c *Chain) Fetch(ctx context.Context, path string) (*Response, error) {
	var best error
	for _, l := range c.Links {
		resp, err := l.Fetcher.Fetch(ctx, path)
		if err == nil {
			return resp, nil
		}
		r := errRank(err)
		if best == nil || r >= errRank(best) {
			best = err
		}
		var le *LocalError
		if ctx.Err() != nil || (r == rankFailed && !l.AnyError) || errors.As(err, &le) {
			return nil, err
		}
	}
	if best == nil {
		return nil, &Error{Upstream: "(none)", Path: path, Msg: "no upstream configured"}
	}
	return nil, best
}

// Error ranks of a Chain, least informative first.
const (
	rankNotFound = iota // fs.ErrNotExist: 404, 410
	rankSkipped         // breaker open: the link was not asked
	rankFailed          // any other failure
)

func errRank(err error) int {
	var ue *Error
	switch {
	case errors.As(err, &ue) && ue.BreakerOpen:
		return rankSkipped
	case errors.Is(err, iofs.ErrNotExist):
		return rankNotFound
	}
	return rankFailed
}

// Spec is one entry of a GOPROXY-syntax list.
type Spec struct {
	Target   string // a URL, "direct" or "off"
	AnyError bool   // followed by "|" rather than ","
}

// ParseList parses a list in GOPROXY syntax: entries separated by ","
// (fall through on not found) or "|" (fall through on any error). Entries
// are URLs (scheme http or https; a bare host gets https://), "direct" or
// "off". Empty entries are errors (a doubled separator is usually a typo).
func ParseList(list string) ([]Spec, error) {
	list = strings.TrimSpace(list)
	if list == "" {
		return nil, errors.New("empty list")
	}
	var specs []Spec
	for list != "" {
		i := strings.IndexAny(list, ",|")
		entry, sep := list, byte(0)
		if i >= 0 {
			entry, sep, list = list[:i], list[i], list[i+1:]
		} else {
			list = ""
		}
		entry = strings.TrimSpace(entry)
		if entry == "" {
			return nil, errors.New("empty entry (doubled separator?)")
		}
		if entry != "direct" && entry != "off" {
			if !strings.Contains(entry, "://") {
				entry = "https://" + entry
			}
			if !strings.HasPrefix(entry, "https://") && !strings.HasPrefix(entry, "http://") {
				return nil, fmt.Errorf("entry %q: only http and https URLs, direct and off are allowed", RedactURL(entry))
			}
			entry = strings.TrimRight(entry, "/")
		}
		specs = append(specs, Spec{Target: entry, AnyError: sep == '|'})
	}
	return specs, nil
}
