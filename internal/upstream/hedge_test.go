package upstream_test

import (
	"context"
	"errors"
	"io"
	"slices"
	"strings"
	"testing"
	"testing/synctest"
	"time"

	"github.com/modproxy/modproxy/internal/upstream"
)

// slowFake answers after delay (fake time in a bubble), or fails with
// ctx.Err() when cancelled first; cancelled records that.
type slowFake struct {
	name      string
	delay     time.Duration
	log       *callLog
	asked     time.Time
	cancelled bool
}

func (f *slowFake) Fetch(ctx context.Context, path string) (*upstream.Response, error) {
	f.log.add(f.name)
	f.asked = time.Now()
	select {
	case <-time.After(f.delay):
		return &upstream.Response{Body: io.NopCloser(strings.NewReader(f.name)), Size: int64(len(f.name)), Source: f.name}, nil
	case <-ctx.Done():
		f.cancelled = true
		return nil, ctx.Err()
	}
}

// TestChainHedging: with HedgeDelay, a mutable request that the first link
// has not answered after the delay also goes to the next link; the first
// answer wins and the other request is cancelled. Immutable requests and
// quick answers are never hedged.
func TestChainHedging(t *testing.T) {
	const hedge = time.Second
	for _, tc := range []struct {
		name        string
		path        string
		first       time.Duration // how long the first link takes
		answer      string
		asked       []string
		cancelFirst bool
	}{
		{"slow list is hedged", "example.com/a/@v/list", time.Hour, "B", []string{"A", "B"}, true},
		{"slow latest is hedged", "example.com/a/@latest", time.Hour, "B", []string{"A", "B"}, true},
		{"slow query is hedged", "example.com/a/@v/master.info", time.Hour, "B", []string{"A", "B"}, true},
		{"quick list is not", "example.com/a/@v/list", hedge / 2, "A", []string{"A"}, false},
		{"zip is not", "example.com/a/@v/v1.0.0.zip", 10 * time.Second, "A", []string{"A"}, false},
		{"sumdb is not", "sumdb/sum.test/latest", 10 * time.Second, "A", []string{"A"}, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				log := &callLog{}
				a := &slowFake{name: "A", delay: tc.first, log: log}
				b := &slowFake{name: "B", log: log}
				c := &upstream.Chain{Links: []upstream.Link{{Fetcher: a}, {Fetcher: b}}, HedgeDelay: hedge}
				start := time.Now()
				resp, err := c.Fetch(context.Background(), tc.path)
				if err != nil {
					t.Fatal(err)
				}
				if err := resp.Body.Close(); err != nil {
					t.Fatal(err)
				}
				synctest.Wait() // the loser has returned
				if resp.Source != tc.answer {
					t.Errorf("answered by %s, want %s", resp.Source, tc.answer)
				}
				if got := log.get(); !slices.Equal(got, tc.asked) {
					t.Errorf("asked %q, want %q", got, tc.asked)
				}
				if len(tc.asked) == 2 && b.asked.Sub(start) != hedge {
					t.Errorf("the hedge started %v after the request, want %v", b.asked.Sub(start), hedge)
				}
				if a.cancelled != tc.cancelFirst {
					t.Errorf("first request cancelled = %v, want %v", a.cancelled, tc.cancelFirst)
				}
			})
		})
	}
}

// TestChainHedgeFailureWaitsForFirst: a hedged request that fails does
// not cut the first one short: its answer still wins, and a caller's
// deadline ends both.
func TestChainHedgeFailureWaitsForFirst(t *testing.T) {
	for _, tc := range []struct {
		name  string
		first time.Duration
		want  error // nil: the first link's answer
	}{
		{"first answers later", 30 * time.Second, nil},
		{"caller's deadline first", time.Hour, context.DeadlineExceeded},
	} {
		t.Run(tc.name, func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				log := &callLog{}
				a := &slowFake{name: "A", delay: tc.first, log: log}
				c := &upstream.Chain{Links: []upstream.Link{{Fetcher: a}, {Fetcher: &fake{name: "B", err: status("B", 404), log: log}}}, HedgeDelay: time.Second}
				ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
				defer cancel()
				resp, err := c.Fetch(ctx, "example.com/a/@v/list")
				if tc.want == nil {
					if err != nil {
						t.Fatalf("Fetch = %v, want A's answer", err)
					}
					if err := resp.Body.Close(); err != nil {
						t.Fatal(err)
					}
					if resp.Source != "A" {
						t.Errorf("answered by %s, want A", resp.Source)
					}
				} else if !errors.Is(err, tc.want) {
					t.Fatalf("Fetch = %v, want %v", err, tc.want)
				}
				synctest.Wait()
				if got := log.get(); !slices.Equal(got, []string{"A", "B"}) {
					t.Errorf("asked %q, want A then B", got)
				}
			})
		})
	}
}
