// Package e2e drives the built modproxy binary with the real go command on
// loopback: fake upstreams built in the test, a test checksum database,
// temp directories, nothing from the network.
package e2e

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

var (
	binary  string // the built modproxy
	goCache string // the developer's build cache, shared to keep builds fast
)

func TestMain(m *testing.M) {
	dir, err := os.MkdirTemp("", "modproxy-e2e-")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	binary = filepath.Join(dir, "modproxy")
	out, err := exec.Command("go", "build", "-o", binary, "../cmd/modproxy").CombinedOutput()
	if err != nil {
		fmt.Fprintf(os.Stderr, "building modproxy: %v\n%s", err, out)
		os.Exit(1)
	}
	out, err = exec.Command("go", "env", "GOCACHE").Output()
	if err != nil {
		fmt.Fprintln(os.Stderr, "go env GOCACHE:", err)
		os.Exit(1)
	}
	goCache = strings.TrimSpace(string(out))
	code := m.Run()
	os.RemoveAll(dir)
	os.Exit(code)
}

// server is a running modproxy process.
type server struct {
	URL  string
	cmd  *exec.Cmd
	logs *syncBuffer
	done chan error
}

type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// startServer runs `modproxy serve --listen 127.0.0.1:0 --log-format json
// ARGS...` and waits for it to listen. The process is killed at cleanup.
func startServer(t *testing.T, env []string, args ...string) *server {
	t.Helper()
	args = append([]string{"serve", "--listen", "127.0.0.1:0", "--log-format", "json"}, args...)
	cmd := exec.Command(binary, args...)
	cmd.Env = append(os.Environ(), env...)
	stderr, err := cmd.StderrPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	s := &server{cmd: cmd, logs: &syncBuffer{}, done: make(chan error, 1)}
	addr := make(chan string, 1)
	go func() {
		sc := bufio.NewScanner(stderr)
		sc.Buffer(make([]byte, 1<<20), 1<<20)
		for sc.Scan() {
			line := sc.Text()
			s.logs.Write([]byte(line + "\n"))
			var rec struct {
				Msg, Addr, URL string
			}
			if json.Unmarshal([]byte(line), &rec) == nil && rec.Msg == "listening" {
				addr <- rec.URL // http:// or https://
			}
		}
		io.Copy(io.Discard, stderr)
	}()
	go func() { s.done <- cmd.Wait() }()
	t.Cleanup(func() {
		_ = cmd.Process.Kill()
		<-s.done
		if t.Failed() {
			t.Logf("modproxy log:\n%s", s.logs.String())
		}
	})
	select {
	case u := <-addr:
		s.URL = u
	case err := <-s.done:
		s.done <- err
		t.Fatalf("modproxy exited: %v\n%s", err, s.logs.String())
	case <-time.After(20 * time.Second):
		t.Fatalf("modproxy did not start:\n%s", s.logs.String())
	}
	return s
}

// logged reports whether the server's log contains all of subs, waiting up
// to 5 s for them (the server buffers its log and flushes it every 200 ms).
func (s *server) logged(subs ...string) bool {
	deadline := time.Now().Add(5 * time.Second)
	for {
		logs := s.logs.String()
		all := true
		for _, sub := range subs {
			all = all && strings.Contains(logs, sub)
		}
		if all || time.Now().After(deadline) {
			return all
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// kill sends SIGKILL and waits.
func (s *server) kill() {
	_ = s.cmd.Process.Signal(syscall.SIGKILL)
	err := <-s.done
	s.done <- err
}

// stop sends SIGTERM and returns the exit error.
func (s *server) stop(t *testing.T) error {
	t.Helper()
	_ = s.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case err := <-s.done:
		s.done <- err
		return err
	case <-time.After(30 * time.Second):
		t.Fatal("modproxy did not stop within 30s of SIGTERM")
		return nil
	}
}

// get fetches path from the server.
func (s *server) get(t *testing.T, path string) (int, []byte) {
	t.Helper()
	resp, err := http.Get(s.URL + path)
	if err != nil {
		t.Fatalf("GET %s: %v", path, err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatalf("GET %s: %v", path, err)
	}
	return resp.StatusCode, b
}

// goEnv is a hermetic environment for the go command.
type goEnv struct {
	dir  string // project directory
	vars []string
}

func newGoEnv(t *testing.T, proxyURL, sumdb string) *goEnv {
	t.Helper()
	root := t.TempDir()
	e := &goEnv{dir: filepath.Join(root, "proj")}
	if err := os.MkdirAll(e.dir, 0o755); err != nil {
		t.Fatal(err)
	}
	e.vars = []string{
		"HOME=" + root, "GOPATH=" + filepath.Join(root, "gopath"), "GOMODCACHE=" + filepath.Join(root, "modcache"),
		"GOCACHE=" + goCache, "GOPROXY=" + proxyURL, "GOSUMDB=" + sumdb, "GOFLAGS=-mod=mod -modcacherw",
		"GONOSUMDB=", "GONOSUMCHECK=", "GOPRIVATE=", "GONOPROXY=", "GOINSECURE=", "GOTOOLCHAIN=local",
		"GOTELEMETRY=off", "GOENV=off", "GOWORK=off", "GIT_TERMINAL_PROMPT=0",
	}
	return e
}

// freshModCache points the go command at a new, empty module cache.
func (e *goEnv) freshModCache(t *testing.T) {
	e.vars = append(e.vars, "GOMODCACHE="+t.TempDir())
}

func (e *goEnv) write(t *testing.T, name, content string) {
	t.Helper()
	p := filepath.Join(e.dir, name)
	if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(p, []byte(content), 0o644); err != nil {
		t.Fatal(err)
	}
}

// run runs the go command in the project and fails the test on error.
func (e *goEnv) run(t *testing.T, args ...string) string {
	t.Helper()
	out, err := e.try(args...)
	if err != nil {
		t.Fatalf("go %s: %v\n%s", strings.Join(args, " "), err, out)
	}
	return out
}

func (e *goEnv) try(args ...string) (string, error) {
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, "go", args...)
	cmd.Dir = e.dir
	cmd.Env = append(os.Environ(), e.vars...)
	out, err := cmd.CombinedOutput()
	return string(out), err
}

// adminURL is the admin listener's URL, from the server's log.
func (s *server) adminURL(t *testing.T) string {
	t.Helper()
	if !s.logged(`"msg":"admin listening"`) {
		t.Fatalf("no admin listener:\n%s", s.logs.String())
	}
	for line := range strings.Lines(s.logs.String()) {
		var rec struct{ Msg, URL string }
		if json.Unmarshal([]byte(line), &rec) == nil && rec.Msg == "admin listening" {
			return strings.TrimSuffix(rec.URL, "/")
		}
	}
	t.Fatal("no admin URL in the log")
	return ""
}
