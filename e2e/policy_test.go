package e2e

import (
	"bytes"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"net/http/httputil"
	"net/url"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/modproxy/modproxy/internal/upstream/upstreamtest"
)

// withoutTimes serves up, with the Time dropped from the .info and
// @latest answers of modules whose path contains "/notime".
func withoutTimes(t *testing.T, up *upstreamtest.Server) string {
	t.Helper()
	target, err := url.Parse(up.URL())
	if err != nil {
		t.Fatal(err)
	}
	rp := httputil.NewSingleHostReverseProxy(target)
	rp.ModifyResponse = func(resp *http.Response) error {
		p := resp.Request.URL.Path
		if resp.StatusCode != http.StatusOK || !strings.Contains(p, "/notime") || !(strings.HasSuffix(p, ".info") || strings.HasSuffix(p, "@latest")) {
			return nil
		}
		data, err := io.ReadAll(resp.Body)
		resp.Body.Close()
		if err != nil {
			return err
		}
		var v struct{ Version string }
		if err := json.Unmarshal(data, &v); err != nil {
			return err
		}
		body := []byte(`{"Version":"` + v.Version + `"}` + "\n")
		resp.Body = io.NopCloser(bytes.NewReader(body))
		resp.ContentLength = int64(len(body))
		resp.Header.Set("Content-Length", strconv.Itoa(len(body)))
		return nil
	}
	ts := httptest.NewServer(rp)
	t.Cleanup(ts.Close)
	return ts.URL
}

// TestSupplyChainPolicy: the real go command through a server with
// policy.min_age = 72h and policy.retracted = "block", against an upstream
// whose .info times are set relative to now. `go get m@latest` picks the
// older version, `go get m@NEW` fails with the reason and leaves go.mod
// and go.sum as they were (and consistent: go mod verify); a version
// without a time is refused; a version the module's latest go.mod
// retracts gets 403 for its zip with the rationale.
func TestSupplyChainPolicy(t *testing.T) {
	now := time.Now()
	old, young := now.Add(-30*24*time.Hour), now.Add(-time.Hour)
	files := func(path, extra string) map[string][]byte {
		return map[string][]byte{"go.mod": []byte("module " + path + "\n\ngo 1.21\n" + extra), "p.go": []byte("package p\n")}
	}
	up := upstreamtest.New(t, []upstreamtest.Module{
		{Path: "example.com/cool", Version: "v1.0.0", Time: old, Files: files("example.com/cool", "")},
		{Path: "example.com/cool", Version: "v1.1.0", Time: young, Files: files("example.com/cool", "")},
		{Path: "example.com/notime", Version: "v1.0.0", Files: files("example.com/notime", "")},
		{Path: "example.com/retr", Version: "v1.0.0", Time: old, Files: files("example.com/retr", "")},
		{Path: "example.com/retr", Version: "v1.1.0", Time: old, Files: files("example.com/retr", "retract v1.0.0 // corrupts the database on upgrade\n")},
	})
	_, sumKey := up.SumDB()
	env := []string{"MODPROXY_POLICY_MIN_AGE=72h", "MODPROXY_POLICY_RETRACTED=block", "MODPROXY_RESILIENCE_PROBE_INTERVAL=0s", "MODPROXY_ADMIN_LISTEN="}
	srv := startServer(t, env, "--cache-dir", t.TempDir(), "--upstream", withoutTimes(t, up), "--sumdb", sumKey)
	g := newGoEnv(t, srv.URL, sumKey)
	g.write(t, "go.mod", "module example.com/proj\n\ngo 1.21\n")

	g.run(t, "get", "example.com/cool@latest")
	goMod, goSum := g.read(t, "go.mod"), g.read(t, "go.sum")
	if !strings.Contains(goMod, "example.com/cool v1.0.0") {
		t.Errorf("go get @latest under the cooldown did not pick v1.0.0:\n%s", goMod)
	}
	if out := g.run(t, "list", "-m", "-versions", "example.com/cool"); strings.Contains(out, "v1.1.0") {
		t.Errorf("go list -m -versions shows the young version: %s", out)
	}

	out, err := g.try("get", "example.com/cool@v1.1.0")
	avail := young.Add(72 * time.Hour).UTC().Format(time.RFC3339)
	if err == nil || !strings.Contains(out, "403 Forbidden") || !strings.Contains(out, "younger than the minimum age 72h0m0s; available from "+avail) {
		t.Errorf("go get of the young version: %v\n%s", err, out)
	}
	if g.read(t, "go.mod") != goMod || g.read(t, "go.sum") != goSum {
		t.Errorf("a refused go get changed go.mod or go.sum:\n%s\n%s", g.read(t, "go.mod"), g.read(t, "go.sum"))
	}
	g.run(t, "mod", "verify")

	out, err = g.try("get", "example.com/notime@v1.0.0")
	if err == nil || !strings.Contains(out, "release time is unknown") {
		t.Errorf("go get of a version without a time: %v\n%s", err, out)
	}

	out, err = g.try("get", "example.com/retr@v1.0.0")
	if err == nil || !strings.Contains(out, "retracted by the module's author: corrupts the database on upgrade") {
		t.Errorf("go get of a retracted version: %v\n%s", err, out)
	}
	if code, body := srv.get(t, "/example.com/retr/@v/v1.0.0.zip"); code != http.StatusForbidden || !strings.Contains(string(body), "corrupts the database") {
		t.Errorf("retracted zip: %d %s", code, body)
	}
	g.run(t, "get", "example.com/retr@v1.1.0")
	_, metrics := srv.get(t, "/metrics")
	for _, series := range []string{
		`modproxy_policy_decisions_total{action="block",namespace="",reason="cooldown"}`,
		`modproxy_policy_decisions_total{action="block",namespace="",reason="unknown_time"}`,
		`modproxy_policy_decisions_total{action="block",namespace="",reason="retracted"}`,
	} {
		if !bytes.Contains(metrics, []byte(series+" ")) || bytes.Contains(metrics, []byte(series+" 0\n")) {
			t.Errorf("%s is not counted", series)
		}
	}
}

// read returns a file of the project.
func (e *goEnv) read(t *testing.T, name string) string {
	t.Helper()
	data, err := os.ReadFile(filepath.Join(e.dir, name))
	if err != nil {
		t.Fatal(err)
	}
	return string(data)
}
