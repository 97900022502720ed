package main

import (
	"context"
	"io"
	"math"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

func TestParseGoSum(t *testing.T) {
	sum := []byte(`github.com/BurntSushi/toml v1.6.0 h1:aaa=
github.com/BurntSushi/toml v1.6.0/go.mod h1:bbb=
golang.org/x/mod v0.43.0/go.mod h1:ccc=
github.com/BurntSushi/toml v1.6.0/go.mod h1:bbb=

gopkg.in/check.v1 v1.0.0-20201130134442-10cb98267c6c/go.mod h1:ddd=
`)
	arts, err := parseGoSum(sum)
	if err != nil {
		t.Fatal(err)
	}
	want := []string{
		"github.com/!burnt!sushi/toml/@v/v1.6.0.info",
		"github.com/!burnt!sushi/toml/@v/v1.6.0.zip",
		"github.com/!burnt!sushi/toml/@v/v1.6.0.mod",
		"golang.org/x/mod/@v/v0.43.0.mod",
		"gopkg.in/check.v1/@v/v1.0.0-20201130134442-10cb98267c6c.mod",
	}
	if len(arts) != len(want) {
		t.Fatalf("got %d artifacts %v, want %d", len(arts), arts, len(want))
	}
	for i, a := range arts {
		if a.Path != want[i] {
			t.Errorf("artifact %d = %s, want %s", i, a.Path, want[i])
		}
	}
	for _, bad := range []string{"a.example/m v1.0.0\n", "a.example/m v1.0.0 xyz\n", "UPPER v1.0.0 h1:x=\n", "a.example/m 1.0 h1:x=\n"} {
		if _, err := parseGoSum([]byte(bad)); err == nil {
			t.Errorf("parseGoSum(%q) succeeded", bad)
		}
	}
}

func TestParseWrk(t *testing.T) {
	out := `Running 10s test @ http://127.0.0.1:41234/x.info
  2 threads and 50 connections
  Thread Stats   Avg      Stdev     Max   +/- Stdev
    Latency     1.10ms    1.52ms  30.12ms   91.20%
    Req/Sec    25.10k     2.01k   30.00k    70.00%
  Latency Distribution
     50%  823.00us
     75%    1.20ms
     90%    2.10ms
     99%    8.73ms
  499402 requests in 10.00s, 146.52MB read
  Non-2xx or 3xx responses: 3
  Socket errors: connect 0, read 1, write 0, timeout 2
Requests/sec:  49940.20
Transfer/sec:     14.65MB
`
	r, err := parseWrk(out)
	if err != nil {
		t.Fatal(err)
	}
	near := func(a, b float64) bool { return math.Abs(a-b) < 1e-9*math.Max(1, math.Abs(b)) }
	if r.Requests != 499402 || !near(r.Seconds, 10) || !near(r.RPS, 49940.20) || !near(r.P50, 0.823) || !near(r.P99, 8.73) || r.Errors != 6 {
		t.Errorf("parseWrk = %+v", r)
	}
	if want := 146.52 * (1 << 20) / 10 / 1e6; !near(r.MBps, want) {
		t.Errorf("MBps = %v, want %v", r.MBps, want)
	}
	if _, err := parseWrk("wrk: connection refused"); err == nil {
		t.Error("parseWrk of garbage succeeded")
	}
}

// TestUpstream checks the counting upstream: protocol files only, per-path
// counts, the checksum database under /sumdb/NAME/, slow paths.
func TestUpstream(t *testing.T) {
	dir := t.TempDir()
	p := filepath.Join(dir, "example.com", "m", "@v")
	if err := os.MkdirAll(p, 0o755); err != nil {
		t.Fatal(err)
	}
	for name, body := range map[string]string{"v1.0.0.info": `{"Version":"v1.0.0"}`, "v1.0.0.mod": "module example.com/m\n", "v1.0.0.lock": ""} {
		if err := os.WriteFile(filepath.Join(p, name), []byte(body), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	db, err := newLocalSumDB(context.Background(), []byte("example.com/m v1.0.0/go.mod h1:Cs1P1rKtXbEqj+YwY6SqyeFy2HS0AhBM0lRyVPySgIw=\n"))
	if err != nil {
		t.Fatal(err)
	}
	u, err := startUpstream(dir, db)
	if err != nil {
		t.Fatal(err)
	}
	defer u.Close()
	c := newClient(2, 10*time.Second)
	status := func(path string) (int, string) {
		resp, err := c.Get(u.URL + "/" + path)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, string(b)
	}
	for path, want := range map[string]int{
		"example.com/m/@v/v1.0.0.info":                      200,
		"example.com/m/@v/v1.0.0.mod":                       200,
		"example.com/m/@v/v1.0.0.lock":                      404,
		"example.com/m/@v/v1.0.0.zip":                       404,
		"../etc/passwd.mod":                                 404,
		"sumdb/" + db.Name + "/supported":                   200,
		"sumdb/" + db.Name + "/lookup/example.com/m@v1.0.0": 200,
		"sumdb/other.example/supported":                     404,
	} {
		if got, body := status(path); got != want {
			t.Errorf("GET %s: %d %q, want %d", path, got, body, want)
		}
	}
	if n := u.Counts()["example.com/m/@v/v1.0.0.mod"]; n != 1 {
		t.Errorf("count = %d, want 1", n)
	}
	u.SetSlow([]string{"example.com/m/@v/v1.0.0.info"}, 200*time.Millisecond)
	start := time.Now()
	if got, _ := status("example.com/m/@v/v1.0.0.info"); got != 200 || time.Since(start) < 200*time.Millisecond {
		t.Errorf("slow path: %d after %v", got, time.Since(start))
	}
	u.Reset()
	if len(u.Counts()) != 0 {
		t.Error("Reset kept counts")
	}
}

func TestParseUpstreamMetrics(t *testing.T) {
	text := []byte(`# HELP modproxy_upstream_fetch_seconds Upstream fetch latency.
# TYPE modproxy_upstream_fetch_seconds histogram
modproxy_upstream_fetch_seconds_bucket{result="ok",upstream="https://a.example",le="+Inf"} 700
modproxy_upstream_fetch_seconds_sum{result="ok",upstream="https://a.example"} 12.5
modproxy_upstream_fetch_seconds_count{result="ok",upstream="https://a.example"} 700
modproxy_upstream_fetch_seconds_count{result="not_found",upstream="https://a.example"} 3
modproxy_upstream_fetch_seconds_count{result="ok",upstream="https://b.example"} 40
modproxy_upstream_retries_total{upstream="https://a.example"} 2
modproxy_requests_total{kind="zip",code="200"} 99
`)
	m := parseUpstreamMetrics(text)
	if m.Fetches["ok"] != 740 || m.Fetches["not_found"] != 3 || len(m.Fetches) != 2 || m.Retries != 2 || m.Requests != 745 {
		t.Errorf("parseUpstreamMetrics = %+v", m)
	}
	d := m.sub(upstreamMetrics{Fetches: map[string]int64{"ok": 740}, Retries: 1, Requests: 741})
	if d.Fetches["ok"] != 0 || d.Fetches["not_found"] != 3 || len(d.Fetches) != 1 || d.Retries != 1 || d.Requests != 4 {
		t.Errorf("sub = %+v", d)
	}
}

// TestFileGOPROXY checks the file:// tree made of a module cache's
// cache/download: a URL of the directory, a "supported" file for every
// checksum database the go command consulted, the download described
// without the sumdb files.
func TestFileGOPROXY(t *testing.T) {
	dl := t.TempDir()
	for name, body := range map[string]string{
		"example.com/m/@v/v1.0.0.info":                 `{"Version":"v1.0.0"}`,
		"example.com/m/@v/v1.0.0.mod":                  "module example.com/m\n",
		"example.com/m/@v/v1.0.0.zip":                  "PK",
		"example.com/m/@v/v1.0.0.lock":                 "",
		"example.com/m/@v/v1.0.0.ziphash":              "h1:x=",
		"sumdb/db.example/lookup/example.com/m@v1.0.0": "1\n",
	} {
		p := filepath.Join(dl, filepath.FromSlash(name))
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, []byte(body), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	u, err := fileGOPROXY(dl)
	if err != nil {
		t.Fatal(err)
	}
	if want := "file://" + filepath.ToSlash(dl); u != want {
		t.Errorf("fileGOPROXY = %s, want %s", u, want)
	}
	if _, err := os.Stat(filepath.Join(dl, "sumdb", "db.example", "supported")); err != nil {
		t.Errorf("no supported file: %v", err)
	}
	ds, err := describeDownload(dl)
	if err != nil {
		t.Fatal(err)
	}
	if ds.Files != 3 || ds.Bytes != int64(len(`{"Version":"v1.0.0"}`)+len("module example.com/m\n")+2) || ds.SumDBFiles != 2 || ds.Fingerprint == "" {
		t.Errorf("describeDownload = %+v", ds)
	}
	// The same files elsewhere have the same fingerprint; another size does not.
	again, err := describeDownload(dl)
	if err != nil || again.Fingerprint != ds.Fingerprint {
		t.Errorf("fingerprint not stable: %+v, %v", again, err)
	}
	if err := os.WriteFile(filepath.Join(dl, "example.com", "m", "@v", "v1.0.0.zip"), []byte("PK.."), 0o644); err != nil {
		t.Fatal(err)
	}
	if other, err := describeDownload(dl); err != nil || other.Fingerprint == ds.Fingerprint {
		t.Errorf("fingerprint unchanged by a new size: %+v, %v", other, err)
	}
	// No sumdb directory: nothing to add.
	if _, err := fileGOPROXY(t.TempDir()); err != nil {
		t.Errorf("fileGOPROXY of a tree without sumdb/: %v", err)
	}
}

func TestProcCPU(t *testing.T) {
	d, err := procCPU(os.Getpid())
	if err != nil {
		t.Fatal(err)
	}
	if d < 0 {
		t.Errorf("procCPU = %v", d)
	}
}

// TestGomodMarkdown renders a synthetic gomod result: medians, ratios of
// the medians and of each round, the fleet.
func TestGomodMarkdown(t *testing.T) {
	run := func(s float64) gomodRun {
		return gomodRun{Wall: time.Duration(s * float64(time.Second)), Download: downloadStats{Files: 3, Bytes: 100, Fingerprint: "f"}}
	}
	rounds := []gomodRound{}
	for _, w := range [][4]float64{{20, 30, 5, 4}, {22, 26, 6, 5}, {30, 33, 5, 5}} {
		rounds = append(rounds, gomodRound{Order: []string{cfgDirect, cfgCold, cfgWarm, cfgFile},
			Runs: map[string]gomodRun{cfgDirect: run(w[0]), cfgCold: run(w[1]), cfgWarm: run(w[2]), cfgFile: run(w[3])}})
	}
	r := results{GoMod: []gomodProject{{Project: "proj", Rounds: rounds,
		Fleet: []fleetRound{{Clients: 2, Order: []string{cfgDirect, cfgCold}, Direct: []gomodRun{run(30), run(40)}, Cold: []gomodRun{run(50), run(60)}}}}}}
	r.Options.GoMod.Fleet = 2
	md := r.markdown()
	for _, want := range []string{
		"| cold / direct | 1.36x | 1.50, 1.18, 1.10 | <= 1x: not met |",
		"| warm / direct | 0.23x | 0.25, 0.27, 0.17 | <= 0.25x: met |",
		"| warm / file | 1.00x | 1.25, 1.20, 1.00 | <= 1.2x: met |",
		"22.000 s | 20.000 s | 30.000 s | 20.000, 22.000, 30.000 |",
		"| 1 | one cold modproxy | 60.000 s | 50.000 s | 50.000 s | 50.000, 60.000 |",
		"| 1 | direct, cold | 1.50x | 1.67x |",
	} {
		if !strings.Contains(md, want) {
			t.Errorf("report lacks %q:\n%s", want, md)
		}
	}
}
