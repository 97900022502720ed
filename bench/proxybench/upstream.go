package main

import (
	"context"
	"errors"
	"io"
	"mime"
	"net"
	"net/http"
	"os"
	"path"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"
)

// upstreamServer serves a GOPROXY tree (the go command's cache/download
// directory) over loopback and counts the requests it receives per path.
// Every request can be delayed by a fixed latency, and chosen paths by a
// latency of their own ("slow mode").
type upstreamServer struct {
	root *os.Root
	srv  *http.Server
	ln   net.Listener
	URL  string

	latency atomic.Int64 // time.Duration added before every answer
	sumdb   *localSumDB  // served at /sumdb/NAME/ when set

	mu     sync.Mutex
	counts map[string]int
	slow   map[string]time.Duration

	inflight     atomic.Int64 // requests being answered
	slowInflight atomic.Int64 // of which on a slow path
}

func startUpstream(dir string, db *localSumDB) (*upstreamServer, error) {
	root, err := os.OpenRoot(dir)
	if err != nil {
		return nil, err
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		root.Close()
		return nil, err
	}
	u := &upstreamServer{root: root, ln: ln, URL: "http://" + ln.Addr().String(), sumdb: db, counts: map[string]int{}, slow: map[string]time.Duration{}}
	u.srv = &http.Server{Handler: u, ReadHeaderTimeout: 10 * time.Second}
	go func() {
		if err := u.srv.Serve(ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
			logf("upstream: %v", err)
		}
	}()
	return u, nil
}

func (u *upstreamServer) Close() {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	_ = u.srv.Shutdown(ctx)
	u.srv.Close()
	u.root.Close()
}

// SetLatency sets the delay added to every request.
func (u *upstreamServer) SetLatency(d time.Duration) { u.latency.Store(int64(d)) }

// SetSlow delays the answers for the given paths by d (replacing earlier
// slow paths); d == 0 clears them.
func (u *upstreamServer) SetSlow(paths []string, d time.Duration) {
	u.mu.Lock()
	defer u.mu.Unlock()
	clear(u.slow)
	if d > 0 {
		for _, p := range paths {
			u.slow[p] = d
		}
	}
}

// Reset forgets the counts.
func (u *upstreamServer) Reset() {
	u.mu.Lock()
	clear(u.counts)
	u.mu.Unlock()
}

// Counts returns a copy of the per-path request counts since the last Reset.
func (u *upstreamServer) Counts() map[string]int {
	u.mu.Lock()
	defer u.mu.Unlock()
	m := make(map[string]int, len(u.counts))
	for k, v := range u.counts {
		m[k] = v
	}
	return m
}

func (u *upstreamServer) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	u.inflight.Add(1)
	defer u.inflight.Add(-1)
	p := strings.TrimPrefix(r.URL.Path, "/")
	u.mu.Lock()
	u.counts[p]++
	slow := u.slow[p]
	u.mu.Unlock()
	if slow > 0 {
		u.slowInflight.Add(1)
		defer u.slowInflight.Add(-1)
	}
	if d := time.Duration(u.latency.Load()) + slow; d > 0 {
		t := time.NewTimer(d)
		select {
		case <-t.C:
		case <-r.Context().Done():
			t.Stop()
			return
		}
	}
	if r.Method != http.MethodGet && r.Method != http.MethodHead {
		http.Error(w, "method not allowed", http.StatusMethodNotAllowed)
		return
	}
	if rest, ok := strings.CutPrefix(p, "sumdb/"); ok {
		name, rest, _ := strings.Cut(rest, "/")
		switch {
		case u.sumdb == nil || name != u.sumdb.Name:
			http.Error(w, "not found: "+p, http.StatusNotFound)
		case rest == "supported":
			w.WriteHeader(http.StatusOK)
		default:
			r2 := r.Clone(r.Context())
			r2.URL.Path, r2.URL.RawPath = "/"+rest, ""
			u.sumdb.Handler.ServeHTTP(w, r2)
		}
		return
	}
	// Only protocol files; never the go command's lock or hash files.
	ext := path.Ext(p)
	if ext != ".info" && ext != ".mod" && ext != ".zip" && !strings.HasSuffix(p, "/@v/list") {
		http.Error(w, "not found: "+p, http.StatusNotFound)
		return
	}
	f, err := u.root.Open(p) // os.Root refuses paths that leave the tree
	if err != nil {
		http.Error(w, "not found: "+p, http.StatusNotFound)
		return
	}
	defer f.Close()
	st, err := f.Stat()
	if err != nil || !st.Mode().IsRegular() {
		http.Error(w, "not found: "+p, http.StatusNotFound)
		return
	}
	ct := mime.TypeByExtension(ext)
	switch ext {
	case ".info":
		ct = "application/json"
	case ".mod", "":
		ct = "text/plain; charset=utf-8"
	}
	w.Header().Set("Content-Type", ct)
	w.Header().Set("Content-Length", strconv.FormatInt(st.Size(), 10))
	if r.Method == http.MethodHead {
		return
	}
	_, _ = io.Copy(w, f) // *os.File: sendfile
}
