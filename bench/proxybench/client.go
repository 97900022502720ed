package main

import (
	"context"
	"fmt"
	"hash/crc32"
	"io"
	"math"
	"net"
	"net/http"
	"slices"
	"sync"
	"sync/atomic"
	"time"
)

// newClient returns an HTTP client for loopback benchmarks: no proxy from
// the environment, no compression, enough idle connections for conns
// concurrent requests, and a per-request timeout.
func newClient(conns int, timeout time.Duration) *http.Client {
	return &http.Client{
		Timeout: timeout,
		Transport: &http.Transport{
			Proxy:               nil,
			DialContext:         (&net.Dialer{Timeout: 5 * time.Second}).DialContext,
			DisableCompression:  true,
			MaxIdleConns:        conns * 2,
			MaxIdleConnsPerHost: conns * 2,
			IdleConnTimeout:     30 * time.Second,
		},
	}
}

// getResult is one GET: status, body length and CRC-32, time to the end
// of the body.
type getResult struct {
	Status int
	Bytes  int64
	CRC    uint32
	Dur    time.Duration
	Err    error
}

func get(ctx context.Context, c *http.Client, url string) getResult {
	start := time.Now()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		return getResult{Err: err}
	}
	resp, err := c.Do(req)
	if err != nil {
		return getResult{Err: err, Dur: time.Since(start)}
	}
	defer resp.Body.Close()
	h := crc32.NewIEEE()
	n, err := io.Copy(h, resp.Body)
	return getResult{Status: resp.StatusCode, Bytes: n, CRC: h.Sum32(), Dur: time.Since(start), Err: err}
}

// check reports whether r is a complete, correct answer for a.
func (r getResult) check(a artifact) error {
	switch {
	case r.Err != nil:
		return fmt.Errorf("%s: %v", a.Path, r.Err)
	case r.Status != http.StatusOK:
		return fmt.Errorf("%s: status %d", a.Path, r.Status)
	case r.Bytes != a.Size:
		return fmt.Errorf("%s: %d bytes, want %d", a.Path, r.Bytes, a.Size)
	case r.CRC != a.CRC:
		return fmt.Errorf("%s: wrong body (CRC-32 differs), %d bytes", a.Path, r.Bytes)
	}
	return nil
}

// fetchRun is the outcome of fetching a list of artifacts.
type fetchRun struct {
	Wall     time.Duration `json:"wall_ns"`
	Requests int           `json:"requests"`
	Bytes    int64         `json:"bytes"`
	Bad      int           `json:"bad"`
	Errors   []string      `json:"errors,omitempty"` // the first few
}

func (f *fetchRun) addError(err error) {
	f.Bad++
	if len(f.Errors) < 5 {
		f.Errors = append(f.Errors, err.Error())
	}
}

// fetchAll GETs base+"/"+path of every artifact with parallel requests in
// flight and checks status, length and content of each answer.
func fetchAll(ctx context.Context, c *http.Client, base string, arts []artifact, parallel int) fetchRun {
	results := make([]getResult, len(arts))
	var next atomic.Int64
	var wg sync.WaitGroup
	start := time.Now()
	for range min(parallel, len(arts)) {
		wg.Go(func() {
			for {
				i := int(next.Add(1)) - 1
				if i >= len(arts) || ctx.Err() != nil {
					return
				}
				results[i] = get(ctx, c, base+"/"+arts[i].Path)
			}
		})
	}
	wg.Wait()
	run := fetchRun{Wall: time.Since(start), Requests: len(arts)}
	for i, r := range results {
		run.Bytes += r.Bytes
		if err := r.check(arts[i]); err != nil {
			run.addError(err)
		}
	}
	return run
}

// latencies summarises a sample of durations.
type latencies struct {
	N   int     `json:"n"`
	P50 float64 `json:"p50_ms"`
	P99 float64 `json:"p99_ms"`
	Max float64 `json:"max_ms"`
}

func summarize(ds []time.Duration) latencies {
	if len(ds) == 0 {
		return latencies{}
	}
	s := slices.Clone(ds)
	slices.Sort(s)
	return latencies{N: len(s), P50: ms(quantile(s, 0.50)), P99: ms(quantile(s, 0.99)), Max: ms(s[len(s)-1])}
}

// quantile returns the nearest-rank q-quantile of sorted s.
func quantile(s []time.Duration, q float64) time.Duration {
	i := int(math.Ceil(q*float64(len(s)))) - 1
	return s[max(0, min(i, len(s)-1))]
}

func ms(d time.Duration) float64 { return float64(d) / float64(time.Millisecond) }

// median returns the median of xs (the lower one for an even count).
func median(xs []time.Duration) time.Duration {
	if len(xs) == 0 {
		return 0
	}
	s := slices.Clone(xs)
	slices.Sort(s)
	return s[(len(s)-1)/2]
}
