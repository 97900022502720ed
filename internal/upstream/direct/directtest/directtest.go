// Package directtest serves git repositories over HTTP on loopback with
// `git http-backend`, for tests of fetching private modules from version
// control without a network.
package directtest

import (
	"net/http/cgi"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

// Server serves bare repositories under its root at URL/NAME.git.
type Server struct {
	URL  string
	root string
	t    testing.TB
	// GitConfig is a GIT_CONFIG_GLOBAL file that maps https://HOST/ to
	// this server (set by MapHost).
	GitConfig string
}

// New starts a git smart-HTTP server on 127.0.0.1. It skips the test when
// git is not installed.
func New(t testing.TB) *Server {
	t.Helper()
	git, err := exec.LookPath("git")
	if err != nil {
		t.Skip("git is not installed")
	}
	root := t.TempDir()
	h := &cgi.Handler{
		Path: git,
		Args: []string{"http-backend"},
		Env:  []string{"GIT_PROJECT_ROOT=" + root, "GIT_HTTP_EXPORT_ALL=1"},
	}
	srv := httptest.NewServer(h)
	t.Cleanup(srv.Close)
	return &Server{URL: srv.URL, root: root, t: t, GitConfig: filepath.Join(t.TempDir(), "gitconfig")}
}

// MapHost writes GitConfig so that https://HOST/ is fetched from this
// server (git's url.<base>.insteadOf).
func (s *Server) MapHost(host string) {
	s.t.Helper()
	cfg := "[url \"" + s.URL + "/\"]\n\tinsteadOf = https://" + host + "/\n[protocol]\n\tallow = always\n"
	if err := os.WriteFile(s.GitConfig, []byte(cfg), 0o644); err != nil {
		s.t.Fatal(err)
	}
}

// Env returns the environment a go command needs to reach the server.
func (s *Server) Env() []string {
	return []string{"GIT_CONFIG_GLOBAL=" + s.GitConfig, "GIT_CONFIG_NOSYSTEM=1", "GIT_TERMINAL_PROMPT=0"}
}

// Repo creates the bare repository NAME.git with one commit of files per
// tag (in order), each commit tagged.
func (s *Server) Repo(name string, commits []Commit) {
	s.t.Helper()
	work := s.t.TempDir()
	bare := s.Bare(name)
	s.git("", "init", "-q", "--bare", bare)
	s.git(work, "init", "-q", "-b", "main")
	for _, c := range commits {
		for p, content := range c.Files {
			full := filepath.Join(work, p)
			if err := os.MkdirAll(filepath.Dir(full), 0o755); err != nil {
				s.t.Fatal(err)
			}
			if err := os.WriteFile(full, []byte(content), 0o644); err != nil {
				s.t.Fatal(err)
			}
		}
		s.git(work, "add", "-A")
		s.git(work, "-c", "user.name=test", "-c", "user.email=test@example.com", "commit", "-q", "-m", "commit "+c.Tag, "--date", "2024-01-02T03:04:05Z")
		if c.Tag != "" {
			s.git(work, "tag", c.Tag)
		}
	}
	s.git(work, "push", "-q", bare, "main", "--tags")
}

// Commit is the content of one commit and its tag ("" for none).
type Commit struct {
	Tag   string
	Files map[string]string
}

// Bare returns the path of the bare repository NAME.git (to push to it
// directly, or install hooks in it).
func (s *Server) Bare(name string) string {
	return filepath.Join(s.root, name+".git")
}

// Git runs git with args in dir, without the user's or the system's git
// configuration, and returns its combined output; a failure fails the
// test.
func (s *Server) Git(dir string, args ...string) string {
	s.t.Helper()
	cmd := exec.Command("git", args...)
	cmd.Dir = dir
	cmd.Env = append(os.Environ(), "GIT_CONFIG_NOSYSTEM=1", "GIT_CONFIG_GLOBAL=/dev/null", "GIT_COMMITTER_DATE=2024-01-02T03:04:05Z")
	out, err := cmd.CombinedOutput()
	if err != nil {
		s.t.Fatalf("git %s: %v\n%s", strings.Join(args, " "), err, out)
	}
	return string(out)
}

func (s *Server) git(dir string, args ...string) { s.t.Helper(); s.Git(dir, args...) }
