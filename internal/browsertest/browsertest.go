// Package browsertest runs headless Chromium (Debian's chromium package)
// for tests of web pages served on loopback: dump the rendered DOM or take
// a screenshot. Without Chromium it skips, unless CI=true, where it fails.
package browsertest

import (
	"bytes"
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"syscall"
	"testing"
	"time"

	"github.com/modproxy/modproxy/internal/testenv"
)

// Find returns the Chromium binary.
func Find(t testing.TB) string {
	t.Helper()
	if p := os.Getenv("MODPROXY_CHROMIUM"); p != "" {
		return p
	}
	for _, name := range []string{"chromium", "chromium-browser"} {
		if p, err := exec.LookPath(name); err == nil {
			return p
		}
	}
	testenv.Unavailable(t, "headless Chromium not found: install Debian's chromium package "+
		"(apt-get install -y chromium) or set MODPROXY_CHROMIUM to a Chromium binary")
	return ""
}

// Run runs headless Chromium with a fresh profile and returns its
// standard output. Virtual time lets the page's fetches and rendering
// finish before the DOM is dumped or the screenshot taken.
func Run(t testing.TB, bin string, args ...string) []byte {
	t.Helper()
	dir, err := os.MkdirTemp("", "modproxy-chromium-")
	if err != nil {
		t.Fatal(err)
	}
	// Not t.TempDir: Chromium's helpers may still be writing into the
	// profile as it exits, and a failed cleanup must not fail the test.
	t.Cleanup(func() { os.RemoveAll(dir) })
	base := []string{
		"--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
		"--disable-background-networking", "--disable-component-update", "--disable-sync",
		"--disable-default-apps", "--disable-extensions", "--disable-dev-shm-usage",
		"--no-default-browser-check", "--mute-audio", "--hide-scrollbars",
		"--user-data-dir=" + filepath.Join(dir, "profile"),
		"--virtual-time-budget=5000",
	}
	ctx, cancel := context.WithTimeout(t.Context(), 2*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, bin, append(base, args...)...)
	cmd.Dir = dir
	cmd.Env = append(os.Environ(),
		"HOME="+dir,
		"XDG_CONFIG_HOME="+filepath.Join(dir, "config"),
		"XDG_CACHE_HOME="+filepath.Join(dir, "cache"),
	)
	// Chromium starts helper processes: put them in their own process
	// group and end that group (ours, by its id) on timeout.
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	cmd.Cancel = func() error { return syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL) }
	cmd.WaitDelay = 10 * time.Second
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if err := cmd.Run(); err != nil {
		t.Fatalf("%s: %v\nstderr (tail):\n%s", bin, err, Tail(stderr.String(), 3000))
	}
	// The helpers normally exit with the browser; make sure of it.
	syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL)
	return stdout.Bytes()
}

// Tail returns the last n bytes of s, marked when cut.
func Tail(s string, n int) string {
	if len(s) > n {
		return "…" + s[len(s)-n:]
	}
	return s
}

// artifactDir is $MODPROXY_ARTIFACTS, created if needed, or a temporary
// directory.
