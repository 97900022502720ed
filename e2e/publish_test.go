package e2e

import (
	"archive/zip"
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"mime/multipart"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"golang.org/x/mod/module"
	"golang.org/x/mod/sumdb/dirhash"
	modzip "golang.org/x/mod/zip"

	"github.com/modproxy/modproxy/internal/upstream/upstreamtest"
)

const publishAdminToken = "e2e-admin-token-0123456789"

// gitRepo is a git repository in a temp directory, with a hermetic git
// configuration.
type gitRepo struct {
	dir string
	env []string
}

func newGitRepo(t *testing.T, files map[string]string) *gitRepo {
	t.Helper()
	if _, err := exec.LookPath("git"); err != nil {
		t.Skip("git not found")
	}
	home := t.TempDir()
	r := &gitRepo{dir: t.TempDir(), env: []string{"HOME=" + home, "GIT_CONFIG_GLOBAL=" + filepath.Join(home, "gitconfig"),
		"GIT_CONFIG_NOSYSTEM=1", "GIT_TERMINAL_PROMPT=0", "GIT_AUTHOR_NAME=e2e", "GIT_AUTHOR_EMAIL=e2e@example.com",
		"GIT_COMMITTER_NAME=e2e", "GIT_COMMITTER_EMAIL=e2e@example.com",
		"GIT_AUTHOR_DATE=2026-11-30T10:00:00Z", "GIT_COMMITTER_DATE=2026-11-30T10:00:00Z"}}
	r.git(t, "init", "-q", "-b", "main")
	r.commit(t, files, "initial")
	return r
}

func (r *gitRepo) git(t *testing.T, args ...string) string {
	t.Helper()
	cmd := exec.Command("git", args...)
	cmd.Dir = r.dir
	cmd.Env = append(os.Environ(), r.env...)
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("git %s: %v\n%s", strings.Join(args, " "), err, out)
	}
	return string(out)
}

func (r *gitRepo) commit(t *testing.T, files map[string]string, msg string) {
	t.Helper()
	for name, body := range files {
		if err := os.WriteFile(filepath.Join(r.dir, name), []byte(body), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	r.git(t, "add", "-A")
	r.git(t, "commit", "-q", "-m", msg)
}

// publishResult is modproxy publish --json's answer.
type publishResult struct {
	Module, Version, H1, Source string
	GoModH1                     string `json:"go_mod_h1"`
	Created                     bool
	Status                      int
}

func runPublish(t *testing.T, r *gitRepo, args ...string) (int, publishResult, string) {
	t.Helper()
	code, stdout, stderr := modproxy(t, r.env, "", append(append([]string{"publish", "--json"}, args...), r.dir)...)
	var res publishResult
	if code == 0 {
		if err := json.Unmarshal([]byte(stdout), &res); err != nil {
			t.Fatalf("publish --json: %v\n%s", err, stdout)
		}
	}
	return code, res, stderr
}

func hostedConfigFile(t *testing.T, extra string) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), "modproxy.toml")
	cfg := "[verify]\nprivate = [\"corp.example.com\"]\n\n[admin]\ntoken = \"" + publishAdminToken + "\"\n\n[[hosted]]\nmatch = \"corp.example.com/*\"\n" + extra
	if err := os.WriteFile(p, []byte(cfg), 0o644); err != nil {
		t.Fatal(err)
	}
	return p
}

// TestPublishAndGoGet: a module published from a tagged local git
// repository is fetched through modproxy by the real go command, whose
// go.sum records the published hashes; published versions are immutable;
// paths outside the hosted patterns are refused; a tampered stored object
// is found by modproxy verify through the private log (even with its
// recorded hash rewritten to match).
func TestPublishAndGoGet(t *testing.T) {
	up := upstreamtest.New(t, []upstreamtest.Module{mod("example.com/pub", "v1.0.0", "pub", "const X = 1")})
	_, key := up.SumDB()
	cacheDir := t.TempDir()
	cfgFile := hostedConfigFile(t, "")
	srv := startServer(t, nil, "--cache-dir", cacheDir, "--upstream", up.URL(), "--sumdb", key, "--config", cfgFile)

	lib := newGitRepo(t, map[string]string{"go.mod": "module corp.example.com/lib\n\ngo 1.21\n",
		"lib.go": "package lib\n\nfunc Hello() string { return \"hello from a hosted module\" }\n"})
	lib.git(t, "tag", "v1.0.0")
	code, res, stderr := runPublish(t, lib, "--proxy", srv.URL, "--token", publishAdminToken)
	if code != 0 || !res.Created || res.Status != http.StatusCreated || res.Version != "v1.0.0" || res.Source != "git tag v1.0.0" {
		t.Fatalf("publish: exit %d %+v\n%s", code, res, stderr)
	}

	g := newGoEnv(t, srv.URL, key)
	g.vars = append(g.vars, "GONOSUMDB=corp.example.com")
	g.write(t, "go.mod", "module example.com/app\n\ngo 1.21\n")
	g.write(t, "main.go", "package main\n\nimport (\n\t\"fmt\"\n\n\t\"corp.example.com/lib\"\n)\n\nfunc main() { fmt.Println(lib.Hello()) }\n")
	g.run(t, "get", "corp.example.com/lib@v1.0.0")
	if out := g.run(t, "run", "."); strings.TrimSpace(out) != "hello from a hosted module" {
		t.Fatalf("go run: %q", out)
	}
	sum, err := os.ReadFile(filepath.Join(g.dir, "go.sum"))
	if err != nil {
		t.Fatal(err)
	}
	for _, line := range []string{"corp.example.com/lib v1.0.0 " + res.H1, "corp.example.com/lib v1.0.0/go.mod " + res.GoModH1} {
		if !strings.Contains(string(sum), line+"\n") {
			t.Errorf("go.sum lacks %q:\n%s", line, sum)
		}
	}
	// The .info carries the tagged commit's time.
	if status, body := srv.get(t, "/corp.example.com/lib/@v/v1.0.0.info"); status != 200 || !strings.Contains(string(body), `"2026-11-30T10:00:00Z"`) {
		t.Fatalf(".info: %d %s", status, body)
	}
	if n := up.Requests("corp.example.com/lib/@v/list") + up.Requests("corp.example.com/lib/@v/v1.0.0.zip"); n != 0 {
		t.Errorf("the upstream was asked %d times for the hosted module's files", n)
	}

	// The go command itself can verify hosted versions against the served
	// private log, given its key.
	vkey, err := os.ReadFile(filepath.Join(cacheDir, "state", "hosted", "key.pub"))
	if err != nil {
		t.Fatal(err)
	}
	g2 := newGoEnv(t, srv.URL, strings.TrimSpace(string(vkey))+" "+srv.URL+"/sumdb-hosted")
	g2.write(t, "go.mod", "module example.com/app\n\ngo 1.21\n")
	g2.write(t, "main.go", "package main\n\nimport \"corp.example.com/lib\"\n\nfunc main() { println(lib.Hello()) }\n")
	g2.run(t, "get", "corp.example.com/lib@v1.0.0")
	if !srv.logged(`"path":"/sumdb-hosted/lookup/corp.example.com/lib@v1.0.0","status":200`) {
		t.Error("the go command did not look the hosted version up in the served log")
	}

	// The same bytes again: 200, nothing changes.
	code, again, stderr := runPublish(t, lib, "--proxy", srv.URL, "--token", publishAdminToken)
	if code != 0 || again.Created || again.Status != http.StatusOK || again.H1 != res.H1 {
		t.Fatalf("publish again: exit %d %+v\n%s", code, again, stderr)
	}
	// Other bytes under the same version (the tag moved): 409.
	lib.commit(t, map[string]string{"lib.go": "package lib\n\nfunc Hello() string { return \"changed\" }\n"}, "change")
	lib.git(t, "tag", "-f", "v1.0.0")
	if code, _, stderr := runPublish(t, lib, "--proxy", srv.URL, "--token", publishAdminToken); code != 1 || !strings.Contains(stderr, "409") {
		t.Fatalf("publish of other bytes: exit %d\n%s", code, stderr)
	}
	// A path outside the hosted patterns: 403.
	other := newGitRepo(t, map[string]string{"go.mod": "module other.example.com/x\n", "x.go": "package x\n"})
	other.git(t, "tag", "v1.0.0")
	if code, _, stderr := runPublish(t, other, "--proxy", srv.URL, "--token", publishAdminToken); code != 1 || !strings.Contains(stderr, "403") {
		t.Fatalf("publish outside the hosted patterns: exit %d\n%s", code, stderr)
	}
	// No version tag at HEAD and no --version: a usage error.
	untagged := newGitRepo(t, map[string]string{"go.mod": "module corp.example.com/untagged\n", "u.go": "package u\n"})
	if code, _, stderr := runPublish(t, untagged, "--proxy", srv.URL, "--token", publishAdminToken); code != 2 || !strings.Contains(stderr, "version tag") {
		t.Fatalf("publish without a tag: exit %d\n%s", code, stderr)
	}

	verify := func(args ...string) (int, string) {
		code, stdout, stderr := modproxy(t, nil, "", append([]string{"verify", "--cache-dir", cacheDir, "--sumdb", key, "--config", cfgFile}, args...)...)
		return code, stdout + stderr
	}
	if code, out := verify(); code != 0 {
		t.Fatalf("verify of a good cache: exit %d\n%s", code, out)
	}
	// Tamper with the stored zip and rewrite its recorded hash to match:
	// only the log still knows the published hash.
	zipPath := filepath.Join(cacheDir, "objects", "corp.example.com", "lib", "@v", "v1.0.0.zip")
	tampered := rezip(t, zipPath, "corp.example.com/lib@v1.0.0/lib.go", "package lib\n\nfunc Hello() string { return \"backdoor\" }\n")
	if err := os.WriteFile(zipPath, tampered, 0o644); err != nil {
		t.Fatal(err)
	}
	forged, err := dirhash.HashZip(zipPath, dirhash.Hash1)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(zipPath+".h1", []byte(forged), 0o644); err != nil {
		t.Fatal(err)
	}
	code, out := verify("--json")
	if code != 1 {
		t.Fatalf("verify of a tampered hosted zip: exit %d\n%s", code, out)
	}
	var rep struct {
		Problems []struct{ Key, Problem, Log, Got string }
	}
	if err := json.Unmarshal([]byte(out), &rep); err != nil {
		t.Fatalf("verify --json: %v\n%s", err, out)
	}
	if len(rep.Problems) != 1 || rep.Problems[0].Key != "corp.example.com/lib/@v/v1.0.0.zip" || rep.Problems[0].Problem != "log-mismatch" || rep.Problems[0].Log != res.H1 {
		t.Fatalf("verify report: %+v", rep)
	}
	if code, out := verify("--repair"); code != 1 || !strings.Contains(out, "moved to quarantine") {
		t.Fatalf("verify --repair: exit %d\n%s", code, out)
	}
	if _, err := os.Stat(zipPath); !os.IsNotExist(err) {
		t.Fatalf("tampered zip still in the store: %v", err)
	}
	// The same upload restores it (the log decides what is the same).
	lib.git(t, "tag", "-f", "v1.0.0", "HEAD~1")
	if code, again, stderr := runPublish(t, lib, "--proxy", srv.URL, "--token", publishAdminToken, "--version", "v1.0.0"); code != 0 || again.Created || again.H1 != res.H1 {
		t.Fatalf("re-publish of the original bytes: exit %d %+v\n%s", code, again, stderr)
	}
	if code, out := verify(); code != 0 {
		t.Fatalf("verify after the restore: exit %d\n%s", code, out)
	}
}

// rezip returns the zip at path with entry name's content replaced.
func rezip(t *testing.T, path, name, content string) []byte {
	t.Helper()
	zr, err := zip.OpenReader(path)
	if err != nil {
		t.Fatal(err)
	}
	defer zr.Close()
	var buf bytes.Buffer
	zw := zip.NewWriter(&buf)
	found := false
	for _, f := range zr.File {
		w, err := zw.Create(f.Name)
		if err != nil {
			t.Fatal(err)
		}
		var src io.Reader = strings.NewReader(content)
		if f.Name != name {
			rc, err := f.Open()
			if err != nil {
				t.Fatal(err)
			}
			defer rc.Close()
			src = rc
		} else {
			found = true
		}
		if _, err := io.Copy(w, src); err != nil {
			t.Fatal(err)
		}
	}
	if err := zw.Close(); err != nil {
		t.Fatal(err)
	}
	if !found {
		t.Fatalf("%s has no entry %s", path, name)
	}
	return buf.Bytes()
}

// TestPublishScopes: with authentication required, publishing needs a
// token with the publish scope whose patterns cover the module path; the
// admin token of the unauthenticated mode is not accepted.
func TestPublishScopes(t *testing.T) {
	up := upstreamtest.New(t, nil)
	_, key := up.SumDB()
	cacheDir := t.TempDir()
	cfgFile := hostedConfigFile(t, "")
	srv := startServer(t, nil, "--cache-dir", cacheDir, "--upstream", up.URL(), "--sumdb", key, "--config", cfgFile, "--auth", "required")
	token := func(name string, flags ...string) string {
		t.Helper()
		args := append(append([]string{"token", "create"}, flags...), "--cache-dir", cacheDir, "--sumdb", key, "--config", cfgFile, name)
		code, secret, stderr := modproxy(t, nil, "", args...)
		secret = strings.TrimSpace(secret)
		if code != 0 || !strings.HasPrefix(secret, "mp_") {
			t.Fatalf("token create: exit %d %q %s", code, secret, stderr)
		}
		return secret
	}
	await := func(secret string) {
		t.Helper()
		deadline := time.Now().Add(15 * time.Second)
		for {
			req, err := http.NewRequest("GET", srv.URL+"/", nil)
			if err != nil {
				t.Fatal(err)
			}
			req.Header.Set("Authorization", "Bearer "+secret)
			resp, err := http.DefaultClient.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			resp.Body.Close()
			if resp.StatusCode != http.StatusUnauthorized {
				return
			}
			if time.Now().After(deadline) {
				t.Fatal("the server does not accept a new token after 15 s")
			}
			time.Sleep(100 * time.Millisecond)
		}
	}
	reader := token("reader", "--scope", "read")
	elsewhere := token("elsewhere", "--scope", "publish", "--match", "corp.example.com/other")
	ci := token("ci", "--scope", "publish", "--scope", "read", "--match", "corp.example.com/lib")
	for _, s := range []string{reader, elsewhere, ci} {
		await(s)
	}
	lib := newGitRepo(t, map[string]string{"go.mod": "module corp.example.com/lib\n", "lib.go": "package lib\n"})
	lib.git(t, "tag", "v1.0.0")
	for _, tc := range []struct {
		name, token, want string
	}{
		{"no token", "", "401"},
		{"the admin token", publishAdminToken, "401"},
		{"read scope only", reader, "403"},
		{"publish scope for another path", elsewhere, "403"},
	} {
		if code, _, stderr := runPublish(t, lib, "--proxy", srv.URL, "--token", tc.token); code != 1 || !strings.Contains(stderr, tc.want) {
			t.Errorf("%s: exit %d, want 1 and %s\n%s", tc.name, code, tc.want, stderr)
		}
	}
	if code, res, stderr := runPublish(t, lib, "--proxy", srv.URL, "--token", ci); code != 0 || !res.Created {
		t.Fatalf("publish with the publish scope: exit %d %+v\n%s", code, res, stderr)
	}
}

// postPublish uploads a version's parts to the publish API and returns the
// status (0 when the request failed: the server was killed).
func postPublish(url, token, path, version string, mod, zipData []byte) int {
	var buf bytes.Buffer
	mw := multipart.NewWriter(&buf)
	for _, p := range []struct {
		name string
		data []byte
	}{{"mod", mod}, {"zip", zipData}} {
		w, err := mw.CreateFormFile(p.name, p.name)
		if err != nil {
			return -1
		}
		if _, err := w.Write(p.data); err != nil {
			return -1
		}
	}
	if err := mw.Close(); err != nil {
		return -1
	}
	req, err := http.NewRequest("POST", url+"/api/publish/"+path+"/@v/"+version, &buf)
	if err != nil {
		return -1
	}
	req.Header.Set("Content-Type", mw.FormDataContentType())
	req.Header.Set("Authorization", "Bearer "+token)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return 0
	}
	resp.Body.Close()
	return resp.StatusCode
}

// TestPublishCrashSafety: modproxy killed with SIGKILL while versions are
// being published loses no acknowledged version, and its log is whole:
// after a restart every acknowledged version is served with its bytes,
// every version can be published again with the same bytes (never 409),
// and modproxy verify then finds nothing wrong.
func TestPublishCrashSafety(t *testing.T) {
	up := upstreamtest.New(t, nil)
	_, key := up.SumDB()
	cacheDir := t.TempDir()
	cfgFile := hostedConfigFile(t, "")
	args := []string{"--cache-dir", cacheDir, "--upstream", up.URL(), "--sumdb", key, "--config", cfgFile}
	srv := startServer(t, nil, args...)
	const path = "corp.example.com/crash"
	type version struct {
		v        string
		mod, zip []byte
	}
	var versions []version
	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, "go.mod"), []byte("module "+path+"\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	for i := range 60 {
		if err := os.WriteFile(filepath.Join(dir, "c.go"), fmt.Appendf(nil, "package crash\n\nconst N = %d\n", i), 0o644); err != nil {
			t.Fatal(err)
		}
		v := fmt.Sprintf("v1.0.%d", i)
		var buf bytes.Buffer
		if err := modzip.CreateFromDir(&buf, module.Version{Path: path, Version: v}, dir); err != nil {
			t.Fatal(err)
		}
		versions = append(versions, version{v, []byte("module " + path + "\n"), buf.Bytes()})
	}
	var mu sync.Mutex
	acked := map[string]bool{}
	var wg sync.WaitGroup
	next := make(chan version, len(versions))
	for _, v := range versions {
		next <- v
	}
	close(next)
	for range 3 {
		wg.Go(func() {
			for v := range next {
				switch code := postPublish(srv.URL, publishAdminToken, path, v.v, v.mod, v.zip); code {
				case http.StatusCreated:
					mu.Lock()
					acked[v.v] = true
					mu.Unlock()
				case 0: // killed
				default:
					t.Errorf("publish %s: %d", v.v, code)
				}
			}
		})
	}
	for deadline := time.Now().Add(20 * time.Second); ; time.Sleep(5 * time.Millisecond) {
		mu.Lock()
		n := len(acked)
		mu.Unlock()
		if n >= 8 || time.Now().After(deadline) {
			break
		}
	}
	srv.kill()
	wg.Wait()
	if len(acked) == 0 || len(acked) == len(versions) {
		t.Fatalf("%d of %d publishes acknowledged before the kill: the test did not kill during publishing", len(acked), len(versions))
	}

	srv = startServer(t, nil, args...)
	_, list := srv.get(t, "/"+path+"/@v/list")
	for _, v := range versions {
		if !acked[v.v] {
			continue
		}
		if status, body := srv.get(t, "/"+path+"/@v/"+v.v+".zip"); status != 200 || !bytes.Equal(body, v.zip) {
			t.Errorf("acknowledged %s after the crash: %d, %d bytes", v.v, status, len(body))
		}
		if !strings.Contains(string(list), v.v+"\n") {
			t.Errorf("acknowledged %s not listed after the crash", v.v)
		}
	}
	for _, v := range versions {
		if code := postPublish(srv.URL, publishAdminToken, path, v.v, v.mod, v.zip); code != http.StatusOK && code != http.StatusCreated {
			t.Errorf("publishing %s again after the crash: %d", v.v, code)
		}
	}
	if code, out, errOut := modproxy(t, nil, "", "verify", "--cache-dir", cacheDir, "--sumdb", key, "--config", cfgFile); code != 0 {
		t.Fatalf("verify after the crash and re-publishing: exit %d\n%s%s", code, out, errOut)
	}
}
