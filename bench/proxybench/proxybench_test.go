package main

import (
	"context"
	"io"
	"math"
	"os"
	"path/filepath"
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
