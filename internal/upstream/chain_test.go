package upstream_test

import (
	"context"
	"errors"
	"fmt"
	"io"
	iofs "io/fs"
	"net/http"
	"slices"
	"strings"
	"sync"
	"testing"

	"github.com/modproxy/modproxy/internal/upstream"
)

// fake is a Fetcher that answers every path with err, or with a body
// naming itself when err is nil, and records its calls.
type fake struct {
	name string
	err  error
	log  *callLog
}

// callLog records which fakes were asked, in order.
type callLog struct {
	mu    sync.Mutex
	names []string
}

func (l *callLog) add(name string) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.names = append(l.names, name)
}

func (l *callLog) get() []string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return slices.Clone(l.names)
}

func (f *fake) Fetch(ctx context.Context, path string) (*upstream.Response, error) {
	f.log.add(f.name)
	if f.err != nil {
		return nil, f.err
	}
	return &upstream.Response{Body: io.NopCloser(strings.NewReader(f.name)), Size: int64(len(f.name)), Source: f.name}, nil
}

// Errors the fakes answer with. Each upstream error names its upstream,
// so that a test can tell which one the chain reported.
func status(name string, code int) error {
	return &upstream.Error{Upstream: name, Path: "p", Status: code}
}

func transport(name string) error {
	return &upstream.Error{Upstream: name, Path: "p", Msg: "connection refused"}
}

func breakerOpen(name string) error {
	return &upstream.Error{Upstream: name, Path: "p", Msg: "skipped", BreakerOpen: true}
}

// link is one element of a test chain: a fake's answer and the separator
// that follows it ("," or "|"; "" for the last).
type link struct {
	name string
	err  error // nil: success
	sep  string
}

func chainOf(links []link) (*upstream.Chain, *callLog) {
	log := &callLog{}
	c := &upstream.Chain{}
	for _, l := range links {
		c.Links = append(c.Links, upstream.Link{Fetcher: &fake{name: l.name, err: l.err, log: log}, AnyError: l.sep == "|"})
	}
	return c, log
}

// reported returns which upstream an error names, "" when it is not an
// *upstream.Error.
func reported(err error) string {
	var ue *upstream.Error
	if errors.As(err, &ue) {
		return ue.Upstream
	}
	return ""
}

// TestChainSeparators: "," moves to the next link only on not found
// (404, 410, anything that is fs.ErrNotExist), "|" on any error, as the go
// command's GOPROXY does; a link whose breaker is open is skipped whatever
// its separator, and a local failure (*upstream.LocalError) ends the chain
// whatever its separator.
func TestChainSeparators(t *testing.T) {
	plain := errors.New("store: disk full")
	local := &upstream.LocalError{Upstream: "A", Path: "p", Op: "spooling the body", Err: plain}
	for _, tc := range []struct {
		name   string
		links  []link
		asked  []string // links called, in order
		answer string   // the link that answered, "" when the chain fails
		err    string   // the upstream the error names, when it fails
	}{
		{"first answers", []link{{"A", nil, ","}, {"B", nil, ""}}, []string{"A"}, "A", ""},
		{", past 404", []link{{"A", status("A", 404), ","}, {"B", nil, ""}}, []string{"A", "B"}, "B", ""},
		{", past 410", []link{{"A", status("A", 410), ","}, {"B", nil, ""}}, []string{"A", "B"}, "B", ""},
		{", past fs.ErrNotExist", []link{{"A", fmt.Errorf("gone: %w", iofs.ErrNotExist), ","}, {"B", nil, ""}}, []string{"A", "B"}, "B", ""},
		{", stops at 500", []link{{"A", status("A", 500), ","}, {"B", nil, ""}}, []string{"A"}, "", "A"},
		{", stops at 403", []link{{"A", status("A", 403), ","}, {"B", nil, ""}}, []string{"A"}, "", "A"},
		{", stops at 400", []link{{"A", status("A", 400), ","}, {"B", nil, ""}}, []string{"A"}, "", "A"},
		{", stops at 429", []link{{"A", status("A", 429), ","}, {"B", nil, ""}}, []string{"A"}, "", "A"},
		{", stops at a transport error", []link{{"A", transport("A"), ","}, {"B", nil, ""}}, []string{"A"}, "", "A"},
		{", stops at another error", []link{{"A", plain, ","}, {"B", nil, ""}}, []string{"A"}, "", ""},
		{"| past 500", []link{{"A", status("A", 500), "|"}, {"B", nil, ""}}, []string{"A", "B"}, "B", ""},
		{"| past 403", []link{{"A", status("A", 403), "|"}, {"B", nil, ""}}, []string{"A", "B"}, "B", ""},
		{"| past a transport error", []link{{"A", transport("A"), "|"}, {"B", nil, ""}}, []string{"A", "B"}, "B", ""},
		{"| past another error", []link{{"A", plain, "|"}, {"B", nil, ""}}, []string{"A", "B"}, "B", ""},
		{"| past 404", []link{{"A", status("A", 404), "|"}, {"B", nil, ""}}, []string{"A", "B"}, "B", ""},
		{"| stops at a local failure", []link{{"A", local, "|"}, {"B", nil, ""}}, []string{"A"}, "", ""},
		{", stops at a local failure", []link{{"A", local, ","}, {"B", nil, ""}}, []string{"A"}, "", ""},
		{", past an open breaker", []link{{"A", breakerOpen("A"), ","}, {"B", nil, ""}}, []string{"A", "B"}, "B", ""},
		// The separator after a link decides: A|B,C moves past A on any
		// error, past B only on not found.
		{"A|B,C: B not found", []link{{"A", status("A", 500), "|"}, {"B", status("B", 404), ","}, {"C", nil, ""}}, []string{"A", "B", "C"}, "C", ""},
		{"A|B,C: B fails", []link{{"A", status("A", 500), "|"}, {"B", status("B", 502), ","}, {"C", nil, ""}}, []string{"A", "B"}, "", "B"},
		{"A,B|C: B fails", []link{{"A", status("A", 404), ","}, {"B", status("B", 502), "|"}, {"C", nil, ""}}, []string{"A", "B", "C"}, "C", ""},
		{"A,B|C: A fails", []link{{"A", status("A", 500), ","}, {"B", nil, "|"}, {"C", nil, ""}}, []string{"A"}, "", "A"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c, log := chainOf(tc.links)
			resp, err := c.Fetch(context.Background(), "example.com/a/@v/v1.0.0.zip")
			if got := log.get(); !slices.Equal(got, tc.asked) {
				t.Errorf("asked %q, want %q", got, tc.asked)
			}
			if tc.answer != "" {
				if err != nil {
					t.Fatalf("Fetch = %v, want %s's answer", err, tc.answer)
				}
				defer resp.Body.Close()
				if resp.Source != tc.answer {
					t.Errorf("answered by %s, want %s", resp.Source, tc.answer)
				}
				return
			}
			if err == nil {
				resp.Body.Close()
				t.Fatalf("Fetch answered by %s, want an error", resp.Source)
			}
			if got := reported(err); got != tc.err {
				t.Errorf("error %v names %q, want %q", err, got, tc.err)
			}
			if tc.err == "" && !errors.Is(err, plain) {
				t.Errorf("error %v, want %v", err, plain)
			}
		})
	}
}

// TestChainErrorRanking: when every link fails, the chain reports the most
// informative error, ranked as the go command's TryProxies ranks them: any
// failure other than "not found" beats "not found", and within a rank the
// later error wins. A skipped link (breaker open) ranks between them: it
// could not be asked, so a later "not found" is not the answer (a cached
// copy is then served stale instead of being dropped).
func TestChainErrorRanking(t *testing.T) {
	for _, tc := range []struct {
		name     string
		links    []link
		err      string
		notFound bool // errors.Is(err, fs.ErrNotExist)
		status   int
	}{
		{"one 404", []link{{"A", status("A", 404), ""}}, "A", true, 404},
		{"404 then 410: the later not found", []link{{"A", status("A", 404), ","}, {"B", status("B", 410), ""}}, "B", true, 410},
		{"410 then 404: the later not found", []link{{"A", status("A", 410), ","}, {"B", status("B", 404), ""}}, "B", true, 404},
		{"500 then 404: the failure", []link{{"A", status("A", 500), "|"}, {"B", status("B", 404), ""}}, "A", false, 500},
		{"404 then 500 (stops there)", []link{{"A", status("A", 404), ","}, {"B", status("B", 500), ""}}, "B", false, 500},
		{"404 then 503 with |", []link{{"A", status("A", 404), "|"}, {"B", status("B", 503), ""}}, "B", false, 503},
		{"500 then 502: the later failure", []link{{"A", status("A", 500), "|"}, {"B", status("B", 502), ""}}, "B", false, 502},
		{"500, 404, 404: the failure", []link{{"A", status("A", 500), "|"}, {"B", status("B", 404), ","}, {"C", status("C", 404), ""}}, "A", false, 500},
		{"403 then 404: the refusal", []link{{"A", status("A", 403), "|"}, {"B", status("B", 404), ""}}, "A", false, 403},
		{"skipped then 404: the skip", []link{{"A", breakerOpen("A"), ","}, {"B", status("B", 404), ""}}, "A", false, 0},
		{"404 then skipped: the skip", []link{{"A", status("A", 404), ","}, {"B", breakerOpen("B"), ""}}, "B", false, 0},
		{"skipped then 500: the failure", []link{{"A", breakerOpen("A"), ","}, {"B", status("B", 500), ""}}, "B", false, 500},
		{"500 then skipped: the failure", []link{{"A", status("A", 500), "|"}, {"B", breakerOpen("B"), ""}}, "A", false, 500},
		{"all skipped: the later skip", []link{{"A", breakerOpen("A"), ","}, {"B", breakerOpen("B"), ""}}, "B", false, 0},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c, log := chainOf(tc.links)
			resp, err := c.Fetch(context.Background(), "example.com/a/@v/list")
			if err == nil {
				resp.Body.Close()
				t.Fatal("Fetch succeeded")
			}
			if len(log.get()) != len(tc.links) {
				t.Errorf("asked %q, want every link", log.get())
			}
			var ue *upstream.Error
			if !errors.As(err, &ue) {
				t.Fatalf("error %v is not an *upstream.Error", err)
			}
			if ue.Upstream != tc.err || ue.Status != tc.status {
				t.Errorf("reported %v (from %s, status %d), want %s's (status %d)", err, ue.Upstream, ue.Status, tc.err, tc.status)
			}
			if got := errors.Is(err, iofs.ErrNotExist); got != tc.notFound {
				t.Errorf("errors.Is(%v, fs.ErrNotExist) = %v, want %v", err, got, tc.notFound)
			}
		})
	}
}

func TestChainEmptyAndCancelled(t *testing.T) {
	if _, err := (&upstream.Chain{}).Fetch(context.Background(), "example.com/a/@v/list"); err == nil || errors.Is(err, iofs.ErrNotExist) {
		t.Errorf("empty chain: %v, want an error that is not not-found", err)
	}
	// A cancelled caller stops the chain even on "|".
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	c, log := chainOf([]link{{"A", fmt.Errorf("A: %w", context.Canceled), "|"}, {"B", nil, ""}})
	if _, err := c.Fetch(ctx, "example.com/a/@v/list"); !errors.Is(err, context.Canceled) {
		t.Errorf("cancelled: %v, want context.Canceled", err)
	}
	if got := log.get(); !slices.Equal(got, []string{"A"}) {
		t.Errorf("cancelled chain asked %q, want only A", got)
	}
}

func TestErrorClasses(t *testing.T) {
	tooLarge := &upstream.Error{Upstream: "u", Path: "p", Msg: "too big", Err: upstream.ErrTooLarge}
	for _, tc := range []struct {
		err                 *upstream.Error
		notFound, transient bool
	}{
		{&upstream.Error{Status: 404}, true, false},
		{&upstream.Error{Status: 410}, true, false},
		{&upstream.Error{Status: 400}, false, false},
		{&upstream.Error{Status: 403}, false, false},
		{&upstream.Error{Status: 429}, false, true},
		{&upstream.Error{Status: 500}, false, true},
		{&upstream.Error{Status: 503}, false, true},
		{&upstream.Error{Msg: "connection reset"}, false, true},
		{tooLarge, false, false},
	} {
		if got := tc.err.NotFound(); got != tc.notFound {
			t.Errorf("%v: NotFound = %v, want %v", tc.err, got, tc.notFound)
		}
		if got := errors.Is(tc.err, iofs.ErrNotExist); got != tc.notFound {
			t.Errorf("%v: errors.Is(fs.ErrNotExist) = %v, want %v", tc.err, got, tc.notFound)
		}
		if got := tc.err.Transient(); got != tc.transient {
			t.Errorf("%v: Transient = %v, want %v", tc.err, got, tc.transient)
		}
	}
	if !errors.Is(tooLarge, upstream.ErrTooLarge) {
		t.Error("an Error does not unwrap to its Err")
	}
	e := &upstream.Error{Upstream: "https://proxy.test", Path: "example.com/a/@v/list", Status: http.StatusGone, Msg: "retracted"}
	if got, want := e.Error(), "https://proxy.test/example.com/a/@v/list: 410 Gone: retracted"; got != want {
		t.Errorf("Error() = %q, want %q", got, want)
	}
}

func TestSanitize(t *testing.T) {
	for _, tc := range []struct {
		in   string
		max  int
		want string
	}{
		{"  not found  ", 100, "not found"},
		{"first line\nsecond line", 100, "first line"},
		{"bell\a and \x1b[31mescape", 100, "bell and [31mescape"},
		{"0123456789", 4, "0123..."},
		{"", 10, ""},
	} {
		if got := upstream.Sanitize(tc.in, tc.max); got != tc.want {
			t.Errorf("Sanitize(%q, %d) = %q, want %q", tc.in, tc.max, got, tc.want)
		}
	}
}

func TestParseList(t *testing.T) {
	specs, err := upstream.ParseList(" https://a.test/ ,proxy.test|direct, off")
	if err != nil {
		t.Fatal(err)
	}
	want := []upstream.Spec{{Target: "https://a.test"}, {Target: "https://proxy.test", AnyError: true}, {Target: "direct"}, {Target: "off"}}
	if !slices.Equal(specs, want) {
		t.Errorf("ParseList = %+v, want %+v", specs, want)
	}
	for _, bad := range []string{"", " ", "a.test,,b.test", "ftp://a.test", "file:///srv/proxy"} {
		if specs, err := upstream.ParseList(bad); err == nil {
			t.Errorf("ParseList(%q) = %+v, want an error", bad, specs)
		}
	}
}
