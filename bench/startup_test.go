package bench

import (
	"bufio"
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"
)

var (
	startupObjects = flag.Int("startup-objects", 100_000, "objects in the store of BenchmarkStartup")
	startupBinary  = flag.String("startup-binary", "", "modproxy binary BenchmarkStartup runs (default: built from this tree), e.g. an older build to compare")
)

// synthStore writes n small objects (.info and .mod of n/2 module
// versions) under DIR/objects in the disk store's layout, without the
// store's fsyncs: a cache as a server leaves it, made in seconds.
func synthStore(b *testing.B, dir string, n int) {
	b.Helper()
	for i := range n / 2 {
		d := filepath.Join(dir, "objects", "example.com", fmt.Sprintf("g%03d", i%1000), fmt.Sprintf("m%06d", i), "@v")
		if err := os.MkdirAll(d, 0o755); err != nil {
			b.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(d, "v1.0.0.info"), []byte(`{"Version":"v1.0.0","Time":"2024-01-02T03:04:05Z"}`), 0o644); err != nil {
			b.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(d, "v1.0.0.mod"), fmt.Appendf(nil, "module example.com/g%03d/m%06d\n\ngo 1.21\n", i%1000, i), 0o644); err != nil {
			b.Fatal(err)
		}
	}
}

// startupRun is one start of the server.
type startupRun struct {
	healthz  time.Duration // from exec until /healthz answers 200
	rssKB    int64         // VmRSS when /healthz first answered
	rebuild  time.Duration // from exec until the index rebuild was logged done; 0 if none
	peakKB   int64         // VmHWM once the rebuild is done (or at healthz)
	listenAt time.Duration // from exec until "listening" was logged
}

// startOnce starts bin on dir, measures, and stops it with SIGTERM.
func startOnce(b *testing.B, bin, dir string, wantRebuild bool) startupRun {
	b.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, bin, "serve", "--listen", "127.0.0.1:0", "--log-format", "json",
		"--cache-dir", dir, "--upstream", "off", "--sumdb", "off", "--config", filepath.Join(dir, "bench.toml"))
	cmd.Env = append(os.Environ(), "MODPROXY_ADMIN_LISTEN=", "MODPROXY_GC_INTERVAL=0s", "MODPROXY_RESILIENCE_PROBE_INTERVAL=0s")
	stderr, err := cmd.StderrPipe()
	if err != nil {
		b.Fatal(err)
	}
	t0 := time.Now()
	if err := cmd.Start(); err != nil {
		b.Fatal(err)
	}
	defer func() {
		_ = cmd.Process.Signal(syscall.SIGTERM)
		_ = cmd.Wait()
	}()
	type listening struct {
		addr string
		at   time.Duration
	}
	addr := make(chan listening, 1)
	rebuilt := make(chan time.Duration, 1)
	go func() {
		sc := bufio.NewScanner(stderr)
		sc.Buffer(make([]byte, 1<<20), 1<<20)
		for sc.Scan() {
			var rec struct{ Msg, Addr string }
			if json.Unmarshal(sc.Bytes(), &rec) != nil {
				continue
			}
			switch rec.Msg {
			case "listening":
				addr <- listening{rec.Addr, time.Since(t0)}
			case "metadata index rebuilt from the store":
				rebuilt <- time.Since(t0)
			}
		}
		_, _ = io.Copy(io.Discard, stderr)
	}()
	var run startupRun
	var a string
	select {
	case l := <-addr:
		a, run.listenAt = l.addr, l.at
	case <-ctx.Done():
		b.Fatal("the server did not listen")
	}
	for {
		resp, err := http.Get("http://" + a + "/healthz")
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == 200 {
				break
			}
		}
		if ctx.Err() != nil {
			b.Fatal("/healthz never answered")
		}
		time.Sleep(time.Millisecond)
	}
	run.healthz = time.Since(t0)
	run.rssKB, run.peakKB = procMem(b, cmd.Process.Pid)
	if wantRebuild {
		select {
		case run.rebuild = <-rebuilt:
		case <-ctx.Done():
			b.Fatal("the index rebuild did not end")
		}
		_, run.peakKB = procMem(b, cmd.Process.Pid)
	}
	return run
}

// procMem reads VmRSS and VmHWM (peak) of pid, in KiB.
func procMem(b *testing.B, pid int) (rss, peak int64) {
	b.Helper()
	data, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		b.Skipf("no /proc: %v", err)
	}
	for line := range strings.SplitSeq(string(data), "\n") {
		k, v, _ := strings.Cut(line, ":")
		n, _ := strconv.ParseInt(strings.TrimSuffix(strings.TrimSpace(v), " kB"), 10, 64)
		switch k {
		case "VmRSS":
			rss = n
		case "VmHWM":
			peak = n
		}
	}
	return rss, peak
}

// BenchmarkStartup starts the built server on a disk cache of
// -startup-objects objects (default 100,000) until /healthz answers, with
// the metadata index present ("index") and missing ("no-index", rebuilt
// from the store). Reported per start: ms-to-healthz, ms-to-listening,
// MB-rss at healthz, and MB-peak-rss (VmHWM; for no-index once the rebuild
// is done) and ms-to-rebuilt (no-index). Linux only (/proc). The store is
// written once, without fsync; each start is a new process, fully
// configured (no `go env`), without checksum verification, admin listener,
// GC schedule or probes.
//
//	go test -run '^$' -bench Startup -benchtime 5x ./bench/
//	go test -run '^$' -bench Startup -benchtime 5x ./bench/ -startup-binary OLD  # compare a build
func BenchmarkStartup(b *testing.B) {
	bin := *startupBinary
	if bin == "" {
		bin = filepath.Join(b.TempDir(), "modproxy")
		if out, err := exec.Command("go", "build", "-o", bin, "../cmd/modproxy").CombinedOutput(); err != nil {
			b.Fatalf("go build: %v\n%s", err, out)
		}
	}
	dir := b.TempDir()
	// Everything configured, so that no start asks the go command.
	if err := os.WriteFile(filepath.Join(dir, "bench.toml"), []byte("[verify]\nprivate = []\n"), 0o644); err != nil {
		b.Fatal(err)
	}
	start := time.Now()
	synthStore(b, dir, *startupObjects)
	b.Logf("%d objects written in %s", *startupObjects, time.Since(start).Round(time.Millisecond))
	startOnce(b, bin, dir, true) // builds the index
	report := func(b *testing.B, runs []startupRun) {
		var h, l, r time.Duration
		var rss, peak int64
		for _, x := range runs {
			h, l, r = h+x.healthz, l+x.listenAt, r+x.rebuild
			rss, peak = rss+x.rssKB, peak+x.peakKB
		}
		n := float64(len(runs))
		b.ReportMetric(0, "ns/op")
		b.ReportMetric(float64(h.Milliseconds())/n, "ms-to-healthz")
		b.ReportMetric(float64(l.Milliseconds())/n, "ms-to-listening")
		b.ReportMetric(float64(rss)/1024/n, "MB-rss")
		b.ReportMetric(float64(peak)/1024/n, "MB-peak-rss")
		if r > 0 {
			b.ReportMetric(float64(r.Milliseconds())/n, "ms-to-rebuilt")
		}
	}
	b.Run("index", func(b *testing.B) {
		var runs []startupRun
		for b.Loop() {
			runs = append(runs, startOnce(b, bin, dir, false))
		}
		report(b, runs)
	})
	b.Run("no-index", func(b *testing.B) {
		var runs []startupRun
		for b.Loop() {
			b.StopTimer()
			if err := os.Remove(filepath.Join(dir, "index.db")); err != nil {
				b.Fatal(err)
			}
			b.StartTimer()
			runs = append(runs, startOnce(b, bin, dir, true))
		}
		report(b, runs)
	})
}
