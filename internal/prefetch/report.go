package prefetch

import (
	"github.com/modproxy/modproxy/internal/units"

	"encoding/json"
	"fmt"
	"io"
	"sort"
	"strconv"
	"time"

	"golang.org/x/mod/semver"
)

// Outcome is how one fetch ended.
type Outcome string

// Outcomes. A proxy that answers from its own cache is indistinguishable
// from one that fetched upstream (the protocol has no header for it), so
// proxy fetches that succeed are Fetched; only the module-cache target can
// tell Cached.
const (
	Fetched  Outcome = "fetched"   // the target answered 200 with the complete body, or the go command downloaded it
	Cached   Outcome = "cached"    // module cache only: every file was already there; nothing was run
	NotFound Outcome = "not_found" // the target answered 404 or 410; never retried
	Failed   Outcome = "failed"    // any other failure, after retries when it was transient
)

// Seconds is a duration that is written in JSON as (fractional) seconds.
type Seconds time.Duration

// MarshalJSON writes the duration in seconds, rounded to the millisecond.
func (s Seconds) MarshalJSON() ([]byte, error) {
	return strconv.AppendFloat(nil, time.Duration(s).Round(time.Millisecond).Seconds(), 'f', -1, 64), nil
}

// UnmarshalJSON reads seconds.
func (s *Seconds) UnmarshalJSON(b []byte) error {
	var f float64
	if err := json.Unmarshal(b, &f); err != nil {
		return err
	}
	*s = Seconds(f * float64(time.Second))
	return nil
}

// Result is the outcome of fetching one file (proxy target) or one module
// version (module-cache target).
type Result struct {
	Path    string `json:"path"`
	Version string `json:"version"`
	// Kind is the file: "info", "mod" or "zip" for a proxy target. For the
	// module cache it is "module" (the go command downloaded .info, .mod
	// and .zip) or "mod" (.info and .mod, for a go.sum "/go.mod" line).
	Kind    string  `json:"kind"`
	Outcome Outcome `json:"outcome"`
	// Status is the last HTTP status received; 0 when none was (transport
	// error, timeout, module cache).
	Status int `json:"status,omitempty"`
	// Attempts counts the requests made; more than 1 means retries.
	Attempts int `json:"attempts"`
	// Bytes is the body size received (proxy) or the size of the files in
	// the module cache.
	Bytes int64 `json:"bytes"`
	// Waited is the total time spent waiting between attempts (backoff
	// and Retry-After).
	Waited Seconds `json:"waited,omitempty"`
	// Error is the reason of a NotFound or Failed outcome.
	Error string `json:"error,omitempty"`
}

// Report is the result of a prefetch run.
type Report struct {
	// Target is the proxy URL (credentials removed) or the module cache
	// directory.
	Target string `json:"target"`
	// Mode is "proxy" or "modcache".
	Mode    string `json:"mode"`
	Modules int    `json:"modules"`
	// Requests counts Results: files for a proxy, module versions for the
	// module cache.
	Requests int `json:"requests"`
	Fetched  int `json:"fetched"`
	Cached   int `json:"cached"`
	NotFound int `json:"not_found"`
	Failed   int `json:"failed"`
	// Retries counts attempts beyond the first, over all results.
	Retries  int     `json:"retries"`
	Bytes    int64   `json:"bytes"`
	Duration Seconds `json:"duration"`
	// Inputs and Skipped are not filled by a Fetcher: the caller copies
	// them from the Set (Set.Sources, Set.Skipped) for the report.
	Inputs  []string  `json:"inputs,omitempty"`
	Skipped []Skipped `json:"skipped,omitempty"`
	// Results holds every result, sorted by path, version and kind.
	Results []Result `json:"results"`
}

// OK reports whether every request succeeded (fetched or already cached).
func (r *Report) OK() bool { return r.NotFound == 0 && r.Failed == 0 }

// finish sorts the results and computes the totals.
func (r *Report) finish() {
	kindOrder := map[string]int{"info": 0, "mod": 1, "zip": 2, "module": 3}
	sort.SliceStable(r.Results, func(i, j int) bool {
		a, b := r.Results[i], r.Results[j]
		if a.Path != b.Path {
			return a.Path < b.Path
		}
		if c := semver.Compare(a.Version, b.Version); c != 0 {
			return c < 0
		}
		return kindOrder[a.Kind] < kindOrder[b.Kind]
	})
	r.Requests, r.Fetched, r.Cached, r.NotFound, r.Failed, r.Retries, r.Bytes = len(r.Results), 0, 0, 0, 0, 0, 0
	for _, res := range r.Results {
		switch res.Outcome {
		case Fetched:
			r.Fetched++
		case Cached:
			r.Cached++
		case NotFound:
			r.NotFound++
		case Failed:
			r.Failed++
		}
		if res.Attempts > 1 {
			r.Retries += res.Attempts - 1
		}
		r.Bytes += res.Bytes
	}
	if r.Results == nil {
		r.Results = []Result{}
	}
}

// WriteText writes the human-readable summary: one line per problem and
// per skipped requirement, then the totals.
func (r *Report) WriteText(w io.Writer) {
	for _, res := range r.Results {
		if res.Outcome != NotFound && res.Outcome != Failed {
			continue
		}
		label := "FAILED"
		if res.Outcome == NotFound {
			label = "NOT FOUND"
		}
		fmt.Fprintf(w, "%-9s %s@%s %s: %s", label, res.Path, res.Version, res.Kind, res.Error)
		if res.Attempts > 1 {
			fmt.Fprintf(w, " (%d attempts)", res.Attempts)
		}
		fmt.Fprintln(w)
	}
	for _, s := range r.Skipped {
		fmt.Fprintf(w, "%-9s %s", "skipped", s.Path)
		if s.Version != "" {
			fmt.Fprintf(w, "@%s", s.Version)
		}
		fmt.Fprintf(w, ": %s", s.Reason)
		if s.Source != "" {
			fmt.Fprintf(w, " (%s)", s.Source)
		}
		fmt.Fprintln(w)
	}
	took := time.Duration(r.Duration).Round(time.Millisecond)
	if r.Mode == "modcache" {
		fmt.Fprintf(w, "prefetch into module cache %s: %s in %s\n", r.Target, plural(r.Modules, "module version"), took)
	} else {
		fmt.Fprintf(w, "prefetch from %s: %s, %s in %s\n", r.Target, plural(r.Modules, "module version"), plural(r.Requests, "file"), took)
	}
	fmt.Fprintf(w, "  fetched    %6d  (%s)\n", r.Fetched, units.Bytes(r.Bytes))
	if r.Mode == "modcache" {
		fmt.Fprintf(w, "  cached     %6d  (already in the module cache)\n", r.Cached)
	}
	fmt.Fprintf(w, "  not found  %6d\n", r.NotFound)
	fmt.Fprintf(w, "  failed     %6d\n", r.Failed)
	if r.Mode != "modcache" {
		fmt.Fprintf(w, "  retries    %6d\n", r.Retries)
	}
	if len(r.Skipped) > 0 {
		fmt.Fprintf(w, "  skipped    %6d\n", len(r.Skipped))
	}
}

func plural(n int, what string) string {
	if n == 1 {
		return "1 " + what
	}
	return fmt.Sprintf("%d %ss", n, what)
}
