// Package coordtest starts a real redis-server on loopback for tests.
package coordtest

import (
	"fmt"
	"net"
	"os/exec"
	"path/filepath"
	"testing"
	"time"

	"github.com/modproxy/modproxy/internal/testenv"
)

// Redis is a running redis-server.
type Redis struct {
	Addr string
	t    testing.TB
	dir  string
	port int
	cmd  *exec.Cmd
}

// Start starts redis-server on a free loopback port with a temp directory,
// stopped at cleanup. Without redis-server it skips the test, or fails
// under CI=true (testenv.Unavailable).
func Start(t testing.TB) *Redis {
	t.Helper()
	if _, err := exec.LookPath("redis-server"); err != nil {
		testenv.Unavailable(t, "redis-server is not installed; install Debian's redis-server package to run this test")
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	port := ln.Addr().(*net.TCPAddr).Port
	ln.Close()
	r := &Redis{Addr: fmt.Sprintf("127.0.0.1:%d", port), t: t, dir: t.TempDir(), port: port}
	r.Restart()
	t.Cleanup(r.Stop)
	return r
}

// Stop kills the server.
func (r *Redis) Stop() {
	if r.cmd != nil && r.cmd.Process != nil {
		_ = r.cmd.Process.Kill()
		_ = r.cmd.Wait()
		r.cmd = nil
	}
}

// Restart starts the server (again) on the same port.
func (r *Redis) Restart() {
	r.t.Helper()
	r.Stop()
	r.cmd = exec.Command("redis-server", "--port", fmt.Sprint(r.port), "--bind", "127.0.0.1", "--dir", r.dir,
		"--save", "", "--appendonly", "no", "--protected-mode", "no", "--logfile", filepath.Join(r.dir, "redis.log"))
	if err := r.cmd.Start(); err != nil {
		r.t.Fatal(err)
	}
	deadline := time.Now().Add(10 * time.Second)
	for {
		c, err := net.Dial("tcp", r.Addr)
		if err == nil {
			c.Close()
			return
		}
		if time.Now().After(deadline) {
			r.t.Fatalf("redis-server did not start on %s", r.Addr)
		}
		time.Sleep(20 * time.Millisecond)
	}
}
