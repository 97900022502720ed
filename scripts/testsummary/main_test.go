package main

import (
	"bytes"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

// TestSummarizeRealRun runs `go test -json` on a module whose tests pass,
// skip (with a reason, and in a subtest) and fail, and summarizes it.
func TestSummarizeRealRun(t *testing.T) {
	gobin, err := exec.LookPath("go")
	if err != nil {
		t.Fatalf("no go command: %v", err)
	}
	cmd := exec.Command(gobin, "test", "-count=1", "-json", "./...")
	cmd.Dir = filepath.Join("testdata", "skipmod")
	cmd.Env = append(os.Environ(), "GOWORK=off", "GOFLAGS=", "GOTOOLCHAIN=local", "GOPROXY=off")
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if _, ok := err.(*exec.ExitError); err != nil && !ok {
		t.Fatalf("go test: %v\n%s", err, stderr.Bytes())
	}
	var report bytes.Buffer
	failed, err := summarize(bytes.NewReader(out), &report)
	if err != nil {
		t.Fatal(err)
	}
	if !failed {
		t.Error("a run with a failing test was not reported as failed")
	}
	got := report.String()
	for _, want := range []string{
		"the frob is broken",        // a failed test's output
		"--- FAIL: TestFails",       //
		"FAIL\texample.com/skipmod", // the package line
		"skipped tests (2):\n",      //
		"  example.com/skipmod TestSkipsWithReason: skip_test.go:8: looking for frobd / skip_test.go:9: frobd is not installed; install it with apt-get install frobd\n",
		"  example.com/skipmod TestSubtests/skips: skip_test.go:14: needs a frob\n",
		"tests: 3 passed, 1 failed, 2 skipped; failed packages: 1\n",
	} {
		if !strings.Contains(got, want) {
			t.Errorf("report lacks %q:\n%s", want, got)
		}
	}
	for _, noise := range []string{"=== RUN", "--- PASS", "--- SKIP", "\nPASS\n"} {
		if strings.Contains(got, noise) {
			t.Errorf("report shows %q, which go test without -v does not:\n%s", noise, got)
		}
	}
}

func TestSummarizeEvents(t *testing.T) {
	for _, tc := range []struct {
		name, in   string
		wantFailed bool
		want       []string
	}{
		{
			name: "passing run",
			in: `{"Action":"run","Package":"p","Test":"TestA"}
{"Action":"output","Package":"p","Test":"TestA","Output":"=== RUN   TestA\n"}
{"Action":"output","Package":"p","Test":"TestA","Output":"--- PASS: TestA (0.00s)\n"}
{"Action":"pass","Package":"p","Test":"TestA"}
{"Action":"output","Package":"p","Output":"PASS\n"}
{"Action":"output","Package":"p","Output":"ok  \tp\t0.01s\n"}
{"Action":"pass","Package":"p"}
{"Action":"output","Package":"q","Output":"?   \tq\t[no test files]\n"}
{"Action":"skip","Package":"q"}
`,
			want: []string{"ok  \tp\t0.01s\n", "?   \tq\t[no test files]\n", "tests: 1 passed, 0 failed, 0 skipped\n"},
		},
		{
			name: "build failure and other lines",
			in: `go: downloading example.com/x v1.0.0
{"ImportPath":"p [p.test]","Action":"build-output","Output":"p/a_test.go:3:1: syntax error\n"}
{"ImportPath":"p [p.test]","Action":"build-fail"}
{"Action":"output","Package":"p","Output":"FAIL\tp [build failed]\n"}
{"Action":"fail","Package":"p"}
`,
			wantFailed: true,
			want:       []string{"go: downloading example.com/x v1.0.0\n", "p/a_test.go:3:1: syntax error\n", "FAIL\tp [build failed]\n", "; failed packages: 1; build failed\n"},
		},
		{
			name: "a test that never finished",
			in: `{"Action":"run","Package":"p","Test":"TestHang"}
{"Action":"output","Package":"p","Test":"TestHang","Output":"=== RUN   TestHang\n"}
{"Action":"output","Package":"p","Test":"TestHang","Output":"panic: test timed out after 1s\n"}
{"Action":"output","Package":"p","Output":"FAIL\tp\t1.01s\n"}
{"Action":"fail","Package":"p"}
`,
			wantFailed: true,
			want:       []string{"panic: test timed out after 1s\n", "FAIL\tp\t1.01s\n"},
		},
		{
			name: "a skip without a reason",
			in: `{"Action":"output","Package":"p","Test":"TestQuiet","Output":"--- SKIP: TestQuiet (0.00s)\n"}
{"Action":"skip","Package":"p","Test":"TestQuiet"}
`,
			want: []string{"skipped tests (1):\n  p TestQuiet: (no reason given)\n"},
		},
	} {
		var out bytes.Buffer
		failed, err := summarize(strings.NewReader(tc.in), &out)
		if err != nil {
			t.Fatal(err)
		}
		if failed != tc.wantFailed {
			t.Errorf("%s: failed = %v, want %v", tc.name, failed, tc.wantFailed)
		}
		for _, w := range tc.want {
			if !strings.Contains(out.String(), w) {
				t.Errorf("%s: report lacks %q:\n%s", tc.name, w, out.String())
			}
		}
	}
}
