package cli_test

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/modproxy/modproxy/internal/app/apptest"
	"github.com/modproxy/modproxy/internal/cli"
	"github.com/modproxy/modproxy/internal/prefetch"
	"github.com/modproxy/modproxy/internal/upstream/upstreamtest"
)

// module is a module version served by the fake upstream: a go.mod and
// one package.
func module(path, version string) upstreamtest.Module {
	return upstreamtest.Module{Path: path, Version: version, Files: map[string][]byte{
		"go.mod": []byte("module " + path + "\n\ngo 1.21\n"), "p.go": []byte("package p\n")}}
}

// runPrefetch runs "modproxy prefetch ARGS" with goenv as the go command's
// answers (nil: the go command is unavailable).
func runPrefetch(t *testing.T, goenv map[string]string, stdin string, args ...string) (int, string, string) {
	t.Helper()
	var out, errb bytes.Buffer
	code := cli.Run(context.Background(), append([]string{"prefetch"}, args...), cli.Env{
		Stdout: &out, Stderr: &errb, Stdin: strings.NewReader(stdin),
		LookupEnv: func(string) (string, bool) { return "", false },
		GoEnv: func(ctx context.Context, keys ...string) (map[string]string, error) {
			if goenv == nil {
				return nil, errors.New("go command not available in this test")
			}
			m := map[string]string{}
			for _, k := range keys {
				m[k] = goenv[k]
			}
			return m, nil
		},
	})
	return code, out.String(), errb.String()
}

func TestPrefetch(t *testing.T) {
	up := upstreamtest.New(t, []upstreamtest.Module{
		module("example.com/a", "v1.0.0"),
		module("example.com/b", "v1.0.0"),
		module("example.com/c", "v1.0.0"),
		module("corp.example/private", "v1.0.0"),
	})
	proxyURL := apptest.Start(t, up)
	dir := t.TempDir()
	writeFile := func(name, content string) string {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, []byte(content), 0o644); err != nil {
			t.Fatal(err)
		}
		return p
	}
	writeFile("go.mod", "module example.com/proj\n\ngo 1.22\n\nrequire (\n\texample.com/a v1.0.0\n\tcorp.example/private v1.0.0\n)\n")
	writeFile("go.sum", strings.SplitAfter(up.GoSum("example.com/b", "v1.0.0"), "\n")[1])
	list := writeFile("mods.txt", "# extra\nexample.com/c@v1.0.0\n")
	goenv := map[string]string{"GOPROXY": "direct|" + proxyURL + ",off", "GONOPROXY": "corp.example"}

	t.Run("default proxy from go env", func(t *testing.T) {
		up.ResetCounts()
		code, stdout, stderr := runPrefetch(t, goenv, "", "--list", list, dir)
		if code != cli.ExitOK {
			t.Fatalf("exit %d\n%s\n%s", code, stdout, stderr)
		}
		for _, want := range []string{
			"prefetch from " + proxyURL + ": 3 module versions, 7 files",
			"skipped   corp.example/private@v1.0.0: matches GONOPROXY",
			"  fetched         7",
		} {
			if !strings.Contains(stdout, want) {
				t.Errorf("stdout lacks %q:\n%s", want, stdout)
			}
		}
		if up.Requests("corp.example/private/@v/v1.0.0.info") != 0 || up.Requests("example.com/b/@v/v1.0.0.zip") != 0 || up.Requests("example.com/c/@v/v1.0.0.zip") != 1 {
			t.Errorf("upstream log %q", up.Log())
		}
	})

	t.Run("json, not found, stdin list", func(t *testing.T) {
		code, stdout, stderr := runPrefetch(t, nil, "example.com/a@v1.0.0\nexample.com/nope@v1.0.0\n", "--proxy", proxyURL, "--json", "--list", "-")
		if code != cli.ExitFailure {
			t.Fatalf("exit %d\n%s\n%s", code, stdout, stderr)
		}
		var rep prefetch.Report
		if err := json.Unmarshal([]byte(stdout), &rep); err != nil {
			t.Fatalf("%v\n%s", err, stdout)
		}
		if rep.Mode != "proxy" || rep.Target != proxyURL || rep.Modules != 2 || rep.Fetched != 3 || rep.NotFound != 3 || len(rep.Results) != 6 {
			t.Errorf("report %+v", rep)
		}
	})

	t.Run("usage errors", func(t *testing.T) {
		for _, tc := range []struct {
			name   string
			goenv  map[string]string
			args   []string
			stderr string
		}{
			{"concurrency", goenv, []string{"--concurrency", "0", dir}, "--concurrency"},
			{"missing file", goenv, []string{filepath.Join(dir, "nope.sum")}, "nope.sum"},
			{"bad list", goenv, []string{"--list", list, "example.com/x@master"}, "not canonical"},
			{"not a module file", goenv, []string{list}, "--list"},
			{"no proxy in GOPROXY", map[string]string{"GOPROXY": "direct"}, []string{dir}, "has no proxy URL"},
			{"no go command", nil, []string{dir}, "GOPROXY"},
			{"bad proxy URL", nil, []string{"--proxy", "file:///srv/proxy", dir}, "http or https"},
			{"bad flag", nil, []string{"--bogus"}, "bogus"},
		} {
			code, _, stderr := runPrefetch(t, tc.goenv, "", tc.args...)
			if code != cli.ExitUsage || !strings.Contains(stderr, tc.stderr) {
				t.Errorf("%s: exit %d, stderr %q; want 2 and %q", tc.name, code, stderr, tc.stderr)
			}
		}
	})

	t.Run("help", func(t *testing.T) {
		code, stdout, _ := runPrefetch(t, nil, "", "--help")
		if code != cli.ExitOK {
			t.Fatalf("exit %d", code)
		}
		for _, want := range []string{"-proxy", "-modcache", "-list", "-concurrency", "-timeout", "-retries", "-exclude", "-json", "Exit status"} {
			if !strings.Contains(stdout, want) {
				t.Errorf("help lacks %q", want)
			}
		}
	})
}
