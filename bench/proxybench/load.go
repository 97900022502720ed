package main

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"os/exec"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"time"
)

// loadShape is the shape of a load run: wrk -tThreads -cConns -dDuration.
type loadShape struct {
	Threads  int
	Conns    int
	Duration time.Duration
}

// loadResult is one load run against one URL.
type loadResult struct {
	Server   string    `json:"server"`
	Target   string    `json:"target"`
	Tool     string    `json:"tool"`
	Requests int64     `json:"requests"`
	Seconds  float64   `json:"seconds"`
	RPS      float64   `json:"rps"`
	P50      float64   `json:"p50_ms"`
	P99      float64   `json:"p99_ms"`
	MBps     float64   `json:"mb_per_s"` // response bytes (headers included for wrk), 10^6 bytes/s
	Errors   int64     `json:"errors"`   // non-2xx/3xx, socket errors, wrong lengths
	Note     string    `json:"note,omitempty"`
	Runs     []float64 `json:"runs_rps,omitempty"` // req/s of every run, when this is their median
	// VsFileServer is 100 * req/s / FileServer's req/s in the same
	// repetition, for each repetition; VsFileServerMedian their median.
	VsFileServer       []float64 `json:"vs_fileserver_pct,omitempty"`
	VsFileServerMedian float64   `json:"vs_fileserver_pct_median,omitempty"`
	// VsNginx and VsNginxMedian are the same against nginx.
	VsNginx       []float64 `json:"vs_nginx_pct,omitempty"`
	VsNginxMedian float64   `json:"vs_nginx_pct_median,omitempty"`
}

// runWrk runs wrk --latency and parses its report. size is the body size:
// the bytes read per request must lie between it and it plus a header
// allowance, or the run counts as failed.
func runWrk(ctx context.Context, url string, shape loadShape, size int64) (loadResult, error) {
	ctx, cancel := context.WithTimeout(ctx, shape.Duration+60*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, "wrk",
		"-t"+strconv.Itoa(shape.Threads), "-c"+strconv.Itoa(shape.Conns),
		"-d"+strconv.Itoa(int(shape.Duration.Seconds()))+"s", "--latency", url)
	out, err := cmd.CombinedOutput()
	if err != nil {
		return loadResult{}, fmt.Errorf("wrk: %v: %s", err, out)
	}
	r, err := parseWrk(string(out))
	if err != nil {
		return r, fmt.Errorf("%v in wrk output:\n%s", err, out)
	}
	r.Tool = "wrk"
	if r.Requests > 0 {
		// wrk prints two decimals of a unit (allow 1% for rounding) and
		// counts the bytes of the responses still in flight at the end.
		per := r.MBps * 1e6 * r.Seconds / float64(r.Requests)
		slack := float64(shape.Conns) * float64(size) / float64(r.Requests)
		if per < float64(size)*0.99 || per > float64(size+2048)*1.01+slack {
			r.Errors += r.Requests
			r.Note = fmt.Sprintf("%.0f bytes read per request, body is %d", per, size)
		}
	}
	return r, nil
}

var (
	wrkTotal   = regexp.MustCompile(`(\d+) requests in ([\d.]+)(us|ms|s|m|h), ([\d.]+)([KMGT]?B) read`)
	wrkRPS     = regexp.MustCompile(`Requests/sec:\s+([\d.]+)`)
	wrkPct     = regexp.MustCompile(`(?m)^\s+(50|99)(?:\.000)?%\s+([\d.]+)(us|ms|s|m)\s*$`)
	wrkNon2xx  = regexp.MustCompile(`Non-2xx or 3xx responses: (\d+)`)
	wrkSockErr = regexp.MustCompile(`Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)`)
)

func parseWrk(out string) (loadResult, error) {
	var r loadResult
	m := wrkTotal.FindStringSubmatch(out)
	if m == nil {
		return r, fmt.Errorf("no request total")
	}
	r.Requests, _ = strconv.ParseInt(m[1], 10, 64)
	secs, _ := strconv.ParseFloat(m[2], 64)
	r.Seconds = secs * unitSeconds(m[3])
	b, _ := strconv.ParseFloat(m[4], 64)
	mult := map[string]float64{"B": 1, "KB": 1 << 10, "MB": 1 << 20, "GB": 1 << 30, "TB": 1 << 40}[m[5]]
	if r.Seconds > 0 {
		r.MBps = b * mult / r.Seconds / 1e6
	}
	m = wrkRPS.FindStringSubmatch(out)
	if m == nil {
		return r, fmt.Errorf("no Requests/sec")
	}
	r.RPS, _ = strconv.ParseFloat(m[1], 64)
	pcts := wrkPct.FindAllStringSubmatch(out, -1)
	for _, p := range pcts {
		v, _ := strconv.ParseFloat(p[2], 64)
		v *= unitSeconds(p[3]) * 1000
		switch p[1] {
		case "50":
			r.P50 = v
		case "99":
			r.P99 = v
		}
	}
	if r.P50 == 0 || r.P99 == 0 {
		return r, fmt.Errorf("no latency distribution")
	}
	if m := wrkNon2xx.FindStringSubmatch(out); m != nil {
		n, _ := strconv.ParseInt(m[1], 10, 64)
		r.Errors += n
	}
	if m := wrkSockErr.FindStringSubmatch(out); m != nil {
		for _, s := range m[1:] {
			n, _ := strconv.ParseInt(s, 10, 64)
			r.Errors += n
		}
	}
	return r, nil
}

func unitSeconds(u string) float64 {
	switch u {
	case "us":
		return 1e-6
	case "ms":
		return 1e-3
	case "m":
		return 60
	case "h":
		return 3600
	}
	return 1
}

// runGoLoad is the fallback when wrk cannot be had: shape.Conns keep-alive
// connections each sending GETs back to back for shape.Duration, every
// answer checked for status 200 and length.
func runGoLoad(ctx context.Context, url string, shape loadShape, size int64) loadResult {
	c := newClient(shape.Conns, 30*time.Second)
	defer c.CloseIdleConnections()
	ctx, cancel := context.WithTimeout(ctx, shape.Duration)
	defer cancel()
	type worker struct {
		durs   []time.Duration
		bytes  int64
		errors int64
	}
	ws := make([]worker, shape.Conns)
	var wg sync.WaitGroup
	start := time.Now()
	for i := range ws {
		w := &ws[i]
		wg.Go(func() {
			for ctx.Err() == nil {
				t := time.Now()
				req, _ := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
				resp, err := c.Do(req)
				if err != nil {
					if ctx.Err() == nil {
						w.errors++
					}
					continue
				}
				n, err := io.Copy(io.Discard, resp.Body)
				resp.Body.Close()
				if ctx.Err() != nil {
					return // the run ended during this request: not counted
				}
				if err != nil || resp.StatusCode != http.StatusOK || n != size {
					w.errors++
					continue
				}
				w.durs = append(w.durs, time.Since(t))
				w.bytes += n
			}
		})
	}
	wg.Wait()
	elapsed := time.Since(start)
	var all []time.Duration
	r := loadResult{Tool: "go", Seconds: elapsed.Seconds()}
	var bytes int64
	for _, w := range ws {
		all = append(all, w.durs...)
		bytes += w.bytes
		r.Errors += w.errors
	}
	r.Requests = int64(len(all))
	r.RPS = float64(r.Requests) / elapsed.Seconds()
	r.MBps = float64(bytes) / elapsed.Seconds() / 1e6
	l := summarize(all)
	r.P50, r.P99 = l.P50, l.P99
	return r
}

// loadTool decides between wrk and the Go load generator. With install
// set, as root, with apt-get present, a missing wrk is installed from
// Debian's packages first.
func loadTool(ctx context.Context, want string, install bool) (tool, note string) {
	if want == "go" {
		return "go", "Go load generator (asked with -load-tool go)"
	}
	if _, err := exec.LookPath("wrk"); err != nil && install {
		aptInstall(ctx, "wrk")
	}
	if _, err := exec.LookPath("wrk"); err == nil {
		return "wrk", ""
	}
	if want == "wrk" {
		return "", "wrk not found"
	}
	return "go", "wrk could not be had; the Go load generator of the same shape was used"
}

// aptInstall installs Debian packages when running as root with apt-get.
func aptInstall(ctx context.Context, pkgs ...string) {
	if _, err := exec.LookPath("apt-get"); err != nil || !isRoot() {
		return
	}
	logf("installing %s with apt-get", strings.Join(pkgs, " "))
	run := func(args ...string) error {
		cmd := exec.CommandContext(ctx, "apt-get", args...)
		cmd.Env = append(cleanEnv(), "DEBIAN_FRONTEND=noninteractive")
		out, err := cmd.CombinedOutput()
		if err != nil {
			logf("apt-get %s: %v: %s", strings.Join(args, " "), err, tail2(out))
		}
		return err
	}
	if run(append([]string{"install", "-y", "-qq", "--no-install-recommends"}, pkgs...)...) == nil {
		return
	}
	if run("update", "-qq") == nil {
		_ = run(append([]string{"install", "-y", "-qq", "--no-install-recommends"}, pkgs...)...)
	}
}

func tail2(b []byte) string {
	if len(b) > 500 {
		b = b[len(b)-500:]
	}
	return strings.TrimSpace(string(b))
}
