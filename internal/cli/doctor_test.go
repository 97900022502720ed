package cli

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/modproxy/modproxy/internal/doctor"
	"github.com/modproxy/modproxy/internal/goenv"
	"github.com/modproxy/modproxy/internal/upstream/upstreamtest"
)

// doctorGoEnv is a synthetic go env: no network needed with --offline.
func doctorGoEnv(t *testing.T) map[string]string {
	return map[string]string{
		"GOPROXY":     "https://proxy.example.com,direct",
		"GOSUMDB":     "off",
		"GOMODCACHE":  t.TempDir(),
		"GOVERSION":   "go1.26.0",
		"GOTOOLCHAIN": "local",
		"GOAUTH":      "netrc",
		"GOMOD":       os.DevNull,
	}
}

// runDoctorTest runs "modproxy doctor ARGS" with goEnv as go env (nil: go env
// fails) and stdin as standard input.
func runDoctorTest(t *testing.T, goEnv map[string]string, stdin string, args ...string) (int, string, string) {
	t.Helper()
	var out, errb bytes.Buffer
	home := t.TempDir()
	env := Env{
		Stdout: &out, Stderr: &errb, Stdin: strings.NewReader(stdin),
		LookupEnv: func(k string) (string, bool) {
			if k == "HOME" {
				return home, true
			}
			return "", false
		},
		GoEnv: func(_ context.Context, keys ...string) (map[string]string, error) {
			if goEnv == nil {
				return nil, errors.New("go env: exec: \"go\": executable file not found in $PATH")
			}
			m := map[string]string{}
			for _, k := range keys {
				m[k] = goEnv[k]
			}
			return m, nil
		},
	}
	code := runDoctorCmd(env, args)
	return code, out.String(), errb.String()
}

type doctorJSON struct {
	Findings []struct {
		ID, Status, Title, Seen, Fix string
	} `json:"findings"`
	Summary struct{ OK, Warnings, Problems int } `json:"summary"`
}

func parseDoctorJSON(t *testing.T, s string) doctorJSON {
	t.Helper()
	var r doctorJSON
	if err := json.Unmarshal([]byte(s), &r); err != nil {
		t.Fatalf("--json output does not parse: %v\n%s", err, s)
	}
	return r
}

func (r doctorJSON) has(id, status, text string) bool {
	for _, f := range r.Findings {
		if f.ID == id && f.Status == status && strings.Contains(f.Title+f.Seen+f.Fix, text) {
			return true
		}
	}
	return false
}

func TestDoctorHelpAndUsage(t *testing.T) {
	code, stdout, _ := runDoctorTest(t, nil, "", "--help")
	if code != ExitOK {
		t.Errorf("--help exit %d", code)
	}
	for _, want := range []string{"-offline", "-json", "-module", "-timeout", "-canary", "-quiet", "doctor explain", "Exit status", "warnings alone give 0"} {
		if !strings.Contains(stdout, want) {
			t.Errorf("doctor --help lacks %q", want)
		}
	}
	for _, args := range [][]string{
		{"--bogus"},
		{"extra"},
		{"--module", "example.com/a@latest"},
		{"--module", "not a path"},
		{"--timeout", "0s"},
		{"--canary", "not a path"},
	} {
		if code, _, _ := runDoctorTest(t, doctorGoEnv(t), "", args...); code != ExitUsage {
			t.Errorf("doctor %v: exit %d, want %d", args, code, ExitUsage)
		}
	}
	// No go command at all: go env fails, with GOTOOLCHAIN=local too.
	t.Setenv("PATH", "")
	code, _, stderr := runDoctorTest(t, nil, "", "--offline")
	if code != ExitFailure || !strings.Contains(stderr, "executable file not found") || !strings.Contains(stderr, "GOTOOLCHAIN=local") {
		t.Errorf("go env failing: exit %d, %q", code, stderr)
	}
}

// TestDoctorToolchainSwitchFails runs the real go command with a toolchain
// it cannot download: every go command fails, go env included, and doctor
// still reports (it reads go env with GOTOOLCHAIN=local).
func TestDoctorToolchainSwitchFails(t *testing.T) {
	if _, err := exec.LookPath("go"); err != nil {
		t.Skip("no go command in PATH")
	}
	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, "go.mod"), []byte("module example.com/app\n\ngo 1.22\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	t.Chdir(dir)
	t.Setenv("GOTOOLCHAIN", "go1.99.0")
	t.Setenv("GOPROXY", "off")
	t.Setenv("GOFLAGS", "")
	t.Setenv("GOENV", "off")
	t.Setenv("GOMODCACHE", t.TempDir())
	var out, errb bytes.Buffer
	env := Env{Stdout: &out, Stderr: &errb, Stdin: strings.NewReader(""), LookupEnv: os.LookupEnv, GoEnv: goenv.Command}
	code := runDoctorCmd(env, []string{"--offline", "--json"})
	if code != ExitFailure {
		t.Errorf("exit %d, want %d; stderr %s", code, ExitFailure, errb.String())
	}
	r := parseDoctorJSON(t, out.String())
	if !r.has("gotoolchain", "problem", "GOTOOLCHAIN=go1.99.0 (set in the environment)") || !r.has("gotoolchain", "problem", "toolchain not available") ||
		!r.has("gotoolchain", "problem", "unset GOTOOLCHAIN") {
		t.Errorf("no toolchain problem:\n%s", out.String())
	}
}

// TestDoctorPrivateModuleLeak: a module that looks private, with GOPRIVATE
// unset and the go command's default GOPROXY and GOSUMDB, is a problem.
func TestDoctorPrivateModuleLeak(t *testing.T) {
	if _, err := exec.LookPath("go"); err != nil {
		t.Skip("no go command in PATH")
	}
	defaults, err := doctor.GoEnvCommand(context.Background(), map[string]string{"GOENV": "off", "GOPROXY": "", "GOSUMDB": "", "GOFLAGS": "", "GOTOOLCHAIN": "local"}, "GOPROXY", "GOSUMDB")
	if err != nil {
		t.Fatal(err)
	}
	env := doctorGoEnv(t)
	env["GOPROXY"], env["GOSUMDB"] = defaults["GOPROXY"], defaults["GOSUMDB"]
	for _, args := range [][]string{
		{"--module", "git.corp.internal/team/lib@v1.2.3"},
		{"--module", "corp.example.com/team/lib@v1.2.3", "--private", "corp.example.com"},
	} {
		code, stdout, stderr := runDoctorTest(t, env, "", append([]string{"--offline", "--json"}, args...)...)
		r := parseDoctorJSON(t, stdout)
		if code != ExitFailure || !r.has("private.module-leak", "problem", "go env -w GOPRIVATE=") || !r.has("private.module-leak", "problem", "public checksum database") {
			t.Errorf("doctor %v: exit %d %s\n%s", args, code, stderr, stdout)
		}
	}
	code, stdout, _ := runDoctorTest(t, env, "", "--offline", "--json", "--module", "corp.example.com/team/lib@v1.2.3", "--probe-private")
	if r := parseDoctorJSON(t, stdout); code != ExitOK || len(r.Findings) == 0 {
		t.Errorf("--probe-private: exit %d\n%s", code, stdout)
	}
}

func TestDoctorExitStatus(t *testing.T) {
	// Warnings only (GOSUMDB=off): exit 0.
	env := doctorGoEnv(t)
	code, stdout, _ := runDoctorTest(t, env, "", "--offline", "--json")
	r := parseDoctorJSON(t, stdout)
	if code != ExitOK || r.Summary.Problems != 0 || r.Summary.Warnings == 0 || !r.has("gosumdb.config", "warning", "GOSUMDB=off") {
		t.Errorf("warnings only: exit %d, summary %+v\n%s", code, r.Summary, stdout)
	}
	// A problem: exit 1.
	env["GOFLAGS"] = "-insecure"
	code, stdout, _ = runDoctorTest(t, env, "", "--offline", "--json")
	r = parseDoctorJSON(t, stdout)
	if code != ExitFailure || r.Summary.Problems == 0 || !r.has("goflags", "problem", "-insecure") {
		t.Errorf("problem: exit %d, summary %+v", code, r.Summary)
	}
	// Text output.
	code, stdout, _ = runDoctorTest(t, env, "", "--offline")
	if code != ExitFailure || !strings.Contains(stdout, "PROBLEM  GOFLAGS -insecure  [goflags]") || !strings.Contains(stdout, "fix: remove -insecure") ||
		!strings.Contains(stdout, "ok       GOPROXY") || !doctorMatch(`\n\d+ ok, \d+ warnings?, 1 problem\n$`, stdout) {
		t.Errorf("text output:\n%s", stdout)
	}
	_, stdout, _ = runDoctorTest(t, env, "", "--offline", "--quiet")
	if strings.Contains(stdout, "ok       ") || !strings.Contains(stdout, "PROBLEM") {
		t.Errorf("--quiet output:\n%s", stdout)
	}
}

func doctorMatch(re, s string) bool {
	return regexp.MustCompile(re).MatchString(s)
}

func TestDoctorModule(t *testing.T) {
	env := doctorGoEnv(t)
	dl := filepath.Join(env["GOMODCACHE"], "cache", "download", "example.com", "a", "@v")
	if err := os.MkdirAll(dl, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dl, "v1.0.0.mod"), []byte("module example.com/a\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	code, stdout, _ := runDoctorTest(t, env, "", "--offline", "--json", "--module", "example.com/a@v1.0.0")
	r := parseDoctorJSON(t, stdout)
	if code != ExitOK || !r.has("module.cached", "warning", "modproxy clean --module example.com/a@v1.0.0") || !r.has("module.route", "ok", "https://proxy.example.com") {
		t.Errorf("cached module: exit %d\n%s", code, stdout)
	}
	_, stdout, _ = runDoctorTest(t, env, "", "--offline", "--json", "--module", "example.com/a@v1.1.0")
	if r := parseDoctorJSON(t, stdout); !r.has("module.cached", "ok", "not cached") {
		t.Errorf("module not cached:\n%s", stdout)
	}
}

func TestDoctorProbesLoopbackProxy(t *testing.T) {
	srv := upstreamtest.New(t, []upstreamtest.Module{
		{Path: "example.com/canary", Version: "v1.0.0", Files: map[string][]byte{"go.mod": []byte("module example.com/canary\n"), "c.go": []byte("package canary\n")}},
	})
	_, vkey := srv.SumDB()
	env := doctorGoEnv(t)
	env["GOPROXY"] = srv.URL() + ",direct"
	env["GOSUMDB"] = vkey
	code, stdout, stderr := runDoctorTest(t, env, "", "--json", "--canary", "example.com/canary", "--timeout", "5s")
	r := parseDoctorJSON(t, stdout)
	if code != ExitOK || !r.has("proxy.http", "ok", "200 OK") || !r.has("proxy.sumdb", "ok", "verified") || !r.has("gosumdb.route", "ok", srv.URL()) {
		t.Errorf("healthy proxy: exit %d %s\n%s", code, stderr, stdout)
	}

	srv.SetFault("example.com/canary/@v/list", upstreamtest.Fault{Kind: upstreamtest.Hang})
	start := time.Now()
	code, stdout, _ = runDoctorTest(t, env, "", "--json", "--canary", "example.com/canary", "--timeout", "200ms")
	r = parseDoctorJSON(t, stdout)
	if code != ExitFailure || !r.has("proxy.http", "problem", "timed out after") {
		t.Errorf("hung proxy: exit %d\n%s", code, stdout)
	}
	if d := time.Since(start); d > 30*time.Second {
		t.Errorf("--timeout not applied: took %s", d)
	}
}

const doctorMismatchLog = `$ go build ./...
go: downloading example.com/lib v1.4.0
verifying example.com/lib@v1.4.0: checksum mismatch
	downloaded: h1:3fEykkGx4cFUK6VBVNhqNcGLmyvmrXwvUwqAGm/mvxI=
	go.sum:     h1:OjN6bcmIadAq3FWzSr+vR4wWAhCh6zsRc95gyZnqfTg=

SECURITY ERROR
This download does NOT match an earlier download recorded in go.sum.
`

func TestDoctorExplain(t *testing.T) {
	code, stdout, stderr := runDoctorTest(t, nil, doctorMismatchLog, "explain")
	if code != ExitOK || !strings.Contains(stdout, "example.com/lib") || strings.Contains(stdout, "no module download errors found") {
		t.Errorf("explain stdin: exit %d %q\n%s", code, stderr, stdout)
	}

	code, stdout, _ = runDoctorTest(t, nil, doctorMismatchLog, "explain", "--json", "-")
	var r struct {
		Findings []struct {
			ID     string `json:"id"`
			Module string `json:"module"`
			Fix    string `json:"fix"`
		} `json:"findings"`
	}
	if err := json.Unmarshal([]byte(stdout), &r); err != nil || code != ExitOK || len(r.Findings) == 0 || r.Findings[0].Fix == "" {
		t.Errorf("explain --json: exit %d %v\n%s", code, err, stdout)
	}

	file := filepath.Join(t.TempDir(), "build.log")
	if err := os.WriteFile(file, []byte(doctorMismatchLog), 0o644); err != nil {
		t.Fatal(err)
	}
	code, stdout2, _ := runDoctorTest(t, nil, "", "explain", file, "--json")
	if code != ExitOK || stdout2 != stdout {
		t.Errorf("explain FILE --json: exit %d, output differs from stdin:\n%s", code, stdout2)
	}

	code, stdout, _ = runDoctorTest(t, nil, "all good\n", "explain")
	if code != ExitOK || !strings.Contains(stdout, "no module download errors found") {
		t.Errorf("explain clean log: exit %d\n%s", code, stdout)
	}
	code, stdout, _ = runDoctorTest(t, nil, "", "explain", "--json")
	if code != ExitOK || !strings.Contains(stdout, `"findings": []`) {
		t.Errorf("explain --json empty: exit %d\n%s", code, stdout)
	}

	if code, _, stderr := runDoctorTest(t, nil, "", "explain", filepath.Join(t.TempDir(), "missing.log")); code != ExitFailure || !strings.Contains(stderr, "missing.log") {
		t.Errorf("explain missing file: exit %d %q", code, stderr)
	}
	if code, _, _ := runDoctorTest(t, nil, "", "explain", file, file); code != ExitUsage {
		t.Errorf("explain two files: exit %d", code)
	}
	if code, _, _ := runDoctorTest(t, nil, "", "explain", "--bogus"); code != ExitUsage {
		t.Errorf("explain --bogus: exit %d", code)
	}
	if code, _, _ := runDoctorTest(t, nil, "", "explain", "--list", file); code != ExitUsage {
		t.Errorf("explain --list FILE: exit %d", code)
	}
	code, stdout, _ = runDoctorTest(t, nil, "", "explain", "--help")
	if code != ExitOK || !strings.Contains(stdout, "Exit status: 0 when the input was read") || !strings.Contains(stdout, "-json") {
		t.Errorf("explain --help: exit %d\n%s", code, stdout)
	}
}

func TestDoctorExplainList(t *testing.T) {
	code, stdout, _ := runDoctorTest(t, nil, "", "explain", "--list")
	if code != ExitOK || strings.Count(stdout, "\n") < 40 || !strings.Contains(stdout, "recognised errors") {
		t.Errorf("explain --list: exit %d\n%s", code, stdout)
	}
	code, stdout, _ = runDoctorTest(t, nil, "", "explain", "--list", "--json")
	var cat []struct {
		ID    string `json:"id"`
		Title string `json:"title"`
	}
	if err := json.Unmarshal([]byte(stdout), &cat); err != nil || code != ExitOK || len(cat) < 40 || cat[0].ID == "" {
		t.Errorf("explain --list --json: exit %d %v", code, err)
	}
}
