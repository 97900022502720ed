package e2e

import (
	"bytes"
	"context"
	"errors"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/modproxy/modproxy/internal/upstream/upstreamtest"
)

// freePair returns a port P such that P and P+1 were free a moment ago.
func freePair(t *testing.T) int {
	t.Helper()
	for range 50 {
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		p := ln.Addr().(*net.TCPAddr).Port
		next, err := net.Listen("tcp", "127.0.0.1:"+strconv.Itoa(p+1))
		ln.Close()
		if err == nil {
			next.Close()
			return p
		}
	}
	t.Fatal("no two consecutive free ports")
	return 0
}

// hold listens on 127.0.0.1:port, as another program would.
func hold(t *testing.T, port int) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:"+strconv.Itoa(port))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ln.Close() })
	return ln.Addr().String()
}

// runToExit runs modproxy with args until it exits (it must, within 60 s)
// and returns its exit code and stderr.
func runToExit(t *testing.T, args ...string) (int, string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, binary, args...)
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	err := cmd.Run()
	var ee *exec.ExitError
	if !errors.As(err, &ee) {
		t.Fatalf("modproxy %s: %v (want a failing exit)\n%s", strings.Join(args, " "), err, stderr.String())
	}
	return ee.ExitCode(), stderr.String()
}

func adminAddrOf(s *server) string {
	m := regexp.MustCompile(`"msg":"admin listening","addr":"([^"]+)"`).FindStringSubmatch(s.logs.String())
	if m == nil {
		return ""
	}
	return m[1]
}

// TestAdminPortTaken: another program holds the port after listen's (the
// admin default): serve starts anyway with the default configuration,
// warns and runs without the admin listener (before, it logged
// "listening" and exited 1).
func TestAdminPortTaken(t *testing.T) {
	p := freePair(t)
	taken := hold(t, p+1)
	srv := startServer(t, nil, "--listen", "127.0.0.1:"+strconv.Itoa(p), "--cache-dir", t.TempDir(), "--upstream", "off", "--sumdb", "off")
	if status, _ := srv.get(t, "/healthz"); status != 200 {
		t.Fatalf("/healthz: %d", status)
	}
	if !srv.logged(`"level":"WARN","msg":"admin listener off`, `"admin_addr":"`+taken+`"`) {
		t.Errorf("no warning naming %s", taken)
	}
	if a := adminAddrOf(srv); a != "" {
		t.Errorf("admin listening on %s", a)
	}
}

// TestTwoInstances: two servers on one machine with different --listen
// (and their own cache directories) both start, each with its admin
// listener on the port after its own.
func TestTwoInstances(t *testing.T) {
	var servers []*server
	for range 2 {
		p := freePair(t)
		s := startServer(t, nil, "--listen", "127.0.0.1:"+strconv.Itoa(p), "--cache-dir", t.TempDir(), "--upstream", "off", "--sumdb", "off")
		if !s.logged(`"msg":"admin listening"`) {
			t.Fatal("no admin listener")
		}
		if a, want := adminAddrOf(s), "127.0.0.1:"+strconv.Itoa(p+1); a != want {
			t.Errorf("admin on %s, want %s", a, want)
		}
		servers = append(servers, s)
	}
	for _, s := range servers {
		if status, _ := s.get(t, "/healthz"); status != 200 {
			t.Errorf("%s/healthz: %d", s.URL, status)
		}
	}
}

// TestAddressTaken: an address configured explicitly that another program
// holds (--listen, or --admin-listen, or its environment variable) stops
// the start with exit status 2, naming the address and the flag, before
// anything says "listening".
func TestAddressTaken(t *testing.T) {
	p := freePair(t)
	taken := hold(t, p)
	free := "127.0.0.1:" + strconv.Itoa(p+1)
	for _, tc := range []struct {
		name string
		env  []string
		args []string
		flag string
	}{
		{"listen", nil, []string{"--listen", taken}, "--listen"},
		{"admin flag", nil, []string{"--listen", free, "--admin-listen", taken}, "--admin-listen"},
		{"admin env", []string{"MODPROXY_ADMIN_LISTEN=" + taken}, []string{"--listen", free}, "MODPROXY_ADMIN_LISTEN"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			args := append([]string{"serve", "--log-format", "json", "--cache-dir", t.TempDir(), "--upstream", "off", "--sumdb", "off"}, tc.args...)
			ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
			defer cancel()
			cmd := exec.CommandContext(ctx, binary, args...)
			cmd.Env = append(os.Environ(), tc.env...)
			var stderr bytes.Buffer
			cmd.Stderr = &stderr
			err := cmd.Run()
			var ee *exec.ExitError
			if !errors.As(err, &ee) || ee.ExitCode() != 2 {
				t.Fatalf("exit: %v, want status 2\n%s", err, stderr.String())
			}
			out := stderr.String()
			for _, want := range []string{"modproxy serve: ", taken, "in use by another program", tc.flag} {
				if !strings.Contains(out, want) {
					t.Errorf("stderr does not say %q:\n%s", want, out)
				}
			}
			if strings.Contains(out, `"msg":"listening"`) {
				t.Errorf(`"listening" logged:\n%s`, out)
			}
		})
	}
}

// TestSameCacheDir: a second server on a cache directory in use stops
// with exit status 2 naming it (and leaves the first one's files alone).
func TestSameCacheDir(t *testing.T) {
	dir := t.TempDir()
	first := startServer(t, nil, "--cache-dir", dir, "--upstream", "off", "--sumdb", "off")
	code, stderr := runToExit(t, "serve", "--listen", "127.0.0.1:0", "--cache-dir", dir, "--upstream", "off", "--sumdb", "off")
	if code != 2 || !strings.Contains(stderr, "cache_dir") || !strings.Contains(stderr, dir+" is in use by another modproxy process") {
		t.Errorf("second server on the same cache directory: exit %d\n%s", code, stderr)
	}
	if status, _ := first.get(t, "/healthz"); status != 200 {
		t.Errorf("first server: %d", status)
	}
}

// TestMissingIndexRebuiltAfterListening: with the metadata index gone,
// the server listens first and rebuilds the index in the background
// (before, the rebuild ran before listening); /readyz reports the index,
// and the rebuilt index knows what the store holds.
func TestMissingIndexRebuiltAfterListening(t *testing.T) {
	up := upstreamtest.New(t, []upstreamtest.Module{mod("example.com/a", "v1.0.0", "a", "")}, upstreamtest.WithoutSumDB())
	dir := t.TempDir()
	srv := startServer(t, nil, "--cache-dir", dir, "--upstream", up.URL(), "--sumdb", "off")
	if status, _ := srv.get(t, "/example.com/a/@v/v1.0.0.zip"); status != 200 {
		t.Fatalf("fill: %d", status)
	}
	if err := srv.stop(t); err != nil {
		t.Fatal(err)
	}
	if err := os.Remove(filepath.Join(dir, "index.db")); err != nil {
		t.Fatal(err)
	}
	srv = startServer(t, nil, "--cache-dir", dir, "--upstream", up.URL(), "--sumdb", "off")
	if !srv.logged(`"msg":"metadata index rebuilt from the store"`) {
		t.Fatal("the index was not rebuilt")
	}
	logs := srv.logs.String()
	if l, r := strings.Index(logs, `"msg":"listening"`), strings.Index(logs, `"msg":"metadata index rebuilt from the store"`); l > r {
		t.Errorf("the index was rebuilt before the server listened:\n%s", logs)
	}
	if !strings.Contains(logs, `"objects":2`) {
		t.Errorf("the rebuilt index does not hold the 2 stored objects (zip and its recorded hash):\n%s", logs)
	}
	if status, body := srv.get(t, "/readyz"); status != 200 || !strings.Contains(string(body), "metadata index: ready (2 objects)") {
		t.Errorf("/readyz: %d %s", status, body)
	}
}
