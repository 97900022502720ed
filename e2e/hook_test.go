package e2e

import (
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/modproxy/modproxy/internal/upstream/direct/directtest"
)

// TestRefreshOnPush: a direct-routed private module with a one-hour TTL;
// the go command sees v1.0.0; a push of tag v1.1.0 to the bare repository
// runs its post-receive hook (the built modproxy's `hook post-receive`,
// configured by git config: the protocol URL and a token with the publish
// scope), and the go command sees v1.1.0 at once; v1.2.0 likewise through
// the admin API without a token (loopback). A push while the proxy is
// unreachable still succeeds, with a warning.
func TestRefreshOnPush(t *testing.T) {
	git := directtest.New(t)
	git.MapHost("corp.example.com")
	const mod = "corp.example.com/lib.git"
	git.Repo("lib", []directtest.Commit{
		{Tag: "v1.0.0", Files: map[string]string{"go.mod": "module " + mod + "\n\ngo 1.21\n", "lib.go": "package lib\n"}},
	})
	cfgFile := filepath.Join(t.TempDir(), "modproxy.toml")
	cfg := "[cache]\nttl = \"1h\"\nnegative_ttl = \"1h\"\n\n[verify]\nprivate = [\"corp.example.com\"]\n\n[[route]]\nmatch = \"corp.example.com\"\nupstream = \"direct\"\n"
	if err := os.WriteFile(cfgFile, []byte(cfg), 0o644); err != nil {
		t.Fatal(err)
	}
	env := append(git.Env(), "GOPRIVATE=corp.example.com")
	cacheDir := t.TempDir()
	tok, err := exec.Command(binary, "token", "create", "ci", "--scope", "publish", "--match", "corp.example.com", "--cache-dir", cacheDir).Output()
	if err != nil {
		t.Fatalf("token create: %v", err)
	}
	srv := startServer(t, env, "--config", cfgFile, "--cache-dir", cacheDir, "--upstream", "off", "--sumdb", "off")
	admin := srv.adminURL(t)

	g := newGoEnv(t, srv.URL, "off")
	g.write(t, "go.mod", "module example.com/proj\n\ngo 1.21\n")
	latest := func() string {
		t.Helper()
		return strings.TrimSpace(g.run(t, "list", "-m", mod+"@latest"))
	}
	if got := latest(); got != mod+" v1.0.0" {
		t.Fatalf("before the push: %q", got)
	}

	bare := git.Bare("lib")
	hook := filepath.Join(bare, "hooks", "post-receive")
	script := "#!/bin/sh\nexec '" + binary + "' hook post-receive\n"
	if err := os.WriteFile(hook, []byte(script), 0o755); err != nil {
		t.Fatal(err)
	}
	git.Git(bare, "config", "modproxy.url", srv.URL)
	git.Git(bare, "config", "modproxy.token", strings.TrimSpace(string(tok)))

	work := filepath.Join(t.TempDir(), "work")
	git.Git("", "clone", "-q", "-b", "main", bare, work)
	push := func(tag, content string) string {
		t.Helper()
		if err := os.WriteFile(filepath.Join(work, "lib.go"), []byte(content), 0o644); err != nil {
			t.Fatal(err)
		}
		git.Git(work, "-c", "user.name=test", "-c", "user.email=test@example.com", "commit", "-q", "-am", tag)
		git.Git(work, "tag", tag)
		return git.Git(work, "push", "origin", "HEAD:main", tag)
	}
	out := push("v1.1.0", "package lib // 1.1\n")
	if !strings.Contains(out, "refreshed "+mod) {
		t.Errorf("push output lacks the hook's report:\n%s", out)
	}
	if got := latest(); got != mod+" v1.1.0" {
		t.Errorf("after pushing v1.1.0, within the TTL: %q", got)
	}
	// The admin API (no token on loopback).
	git.Git(bare, "config", "modproxy.url", admin)
	git.Git(bare, "config", "--unset", "modproxy.token")
	if out := push("v1.2.0", "package lib // 1.2\n"); !strings.Contains(out, "refreshed "+mod) {
		t.Errorf("push output lacks the hook's report:\n%s", out)
	}
	if got := latest(); got != mod+" v1.2.0" {
		t.Errorf("after pushing v1.2.0, within the TTL: %q", got)
	}
	if !srv.logged(`"action":"refresh"`, mod) {
		t.Errorf("the refresh is not in the server's log")
	}

	// The proxy unreachable: the push succeeds, the hook warns.
	git.Git(bare, "config", "modproxy.url", "http://127.0.0.1:1")
	out = push("v1.3.0", "package lib // 1.3\n")
	if !strings.Contains(out, "warning") || !strings.Contains(out, "could not refresh "+mod) {
		t.Errorf("push with the proxy unreachable: no warning in\n%s", out)
	}
	// The hook itself exits 0 then (git ignores a post-receive's status,
	// but the hook promises it).
	newID := strings.TrimSpace(git.Git(bare, "rev-parse", "v1.3.0"))
	cmd := exec.Command(binary, "hook", "post-receive", "--timeout", "5s")
	cmd.Dir = bare
	cmd.Env = append(os.Environ(), "GIT_CONFIG_NOSYSTEM=1", "GIT_CONFIG_GLOBAL=/dev/null")
	cmd.Stdin = strings.NewReader(strings.Repeat("0", 40) + " " + newID + " refs/tags/v1.3.0\n")
	if out, err := cmd.CombinedOutput(); err != nil || !strings.Contains(string(out), "warning") {
		t.Errorf("hook with the proxy unreachable: %v\n%s", err, out)
	}
}
