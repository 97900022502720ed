package explain

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"runtime"
	"strings"
	"sync"
	"testing"
)

func explainString(t *testing.T, s string) []Finding {
	t.Helper()
	fs, err := Explain(strings.NewReader(s))
	if err != nil {
		t.Fatal(err)
	}
	return fs
}

func ids(fs []Finding) []string {
	var out []string
	for _, f := range fs {
		out = append(out, f.ID)
	}
	return out
}

func TestNonErrorLinesProduceNothing(t *testing.T) {
	lines := []string{
		"go: downloading example.com/a v1.0.0",
		"go: downloading go1.23.0 (linux/amd64)",
		"go: finding module for package example.com/a/b",
		"go: found example.com/a/b in example.com/a v1.0.0",
		"go: added example.com/a v1.0.0",
		"go: upgraded example.com/a v1.0.0 => v1.1.0",
		"go: extracting example.com/a v1.0.0",
		"go: switching to go1.23.0",
		"go: example.com/a@v1.0.0 requires",
		"go: module example.com/a@v1.0.0 found",
		"go: to switch to the latest unretracted version, run:",
		"\tgo get example.com/a@latest",
		"# example.com/app/cmd",
		"ok  \texample.com/app/internal/store\t0.012s",
		"--- FAIL: TestFetch (0.00s)",
		"    fetch_test.go:31: read body: unexpected EOF",
		"    client_test.go:12: dial tcp 127.0.0.1:9: connect: connection refused",
		"panic: open /tmp/data.json: permission denied",
		"main.go:12:2: undefined: foo",
		"FAIL\texample.com/app\t0.213s",
		"Please make sure you have the correct access rights",
		"Confirm the import path was entered correctly.",
		"\tdownloaded: h1:3fEykkGx4cFUK6VBVNhqNcGLmyvmrXwvUwqAGm/mvxI=",
		"example.com/app",
		"",
		"   ",
	}
	x := New()
	for _, l := range lines {
		if e, ok := x.Classify(l); ok {
			t.Errorf("Classify(%q) = %s, want no match", l, e.ID)
		}
	}
	if fs := explainString(t, strings.Join(lines, "\n")); len(fs) != 0 {
		t.Errorf("Explain(noise) = %v, want nothing", ids(fs))
	}
	if fs := explainString(t, ""); fs != nil {
		t.Errorf("Explain(\"\") = %v, want nil", fs)
	}
}

func TestMostSpecificEntryWins(t *testing.T) {
	x := New()
	for _, tc := range []struct{ line, id string }{
		// 404 on @v/list rather than the generic 404.
		{"go: module example.com/a: reading https://proxy.example.com/example.com/a/@v/list: 404 Not Found", "proxy-list-not-found"},
		// checksum database lookup rather than the generic 404/410.
		{"go: example.com/a@v1.0.0: verifying module: example.com/a@v1.0.0: reading https://sum.example.com/lookup/example.com/a@v1.0.0: 410 Gone", "sumdb-lookup-not-found"},
		// "invalid version: unknown revision" rather than "unknown revision".
		{"go: example.com/a@v1.2.3: invalid version: unknown revision v1.2.3", "invalid-version-unknown-revision"},
		// The reason inside the proxy's message rather than the 404 around it.
		{"\tserver response: not found: example.com/a@v1.0.0: invalid version: unknown revision v1.0.0", "invalid-version-unknown-revision"},
		// "terminal prompts disabled" rather than "could not read Username".
		{"\tfatal: could not read Username for 'https://git.example.com': terminal prompts disabled", "git-terminal-prompts-disabled"},
		// The HTTP proxy failure rather than the connection refused it wraps.
		{`go: example.com/a@v1.0.0: Get "https://proxy.example.com/example.com/a/@v/list": proxyconnect tcp: dial tcp 10.0.0.1:3128: connect: connection refused`, "proxyconnect-failed"},
		// DNS timeout rather than a generic i/o timeout.
		{`go: example.com/a@v1.0.0: Get "https://proxy.example.com/example.com/a/@v/list": dial tcp: lookup proxy.example.com on 10.0.0.2:53: read udp 10.0.0.5:40000->10.0.0.2:53: i/o timeout`, "dns-temporary-failure"},
		// TLS failure rather than "unrecognized import path" around it.
		{`go: example.com/a@v1.0.0: unrecognized import path "example.com/a": https fetch: Get "https://example.com/a?go-get=1": tls: failed to verify certificate: x509: certificate signed by unknown authority`, "tls-unknown-authority"},
		// Direct-fetch failure rather than a proxy 404.
		{`go: example.com/a@v1.0.0: unrecognized import path "example.com/a": reading https://example.com/a?go-get=1: 404 Not Found`, "unrecognized-import-path"},
		// Lookup disabled by -mod=vendor rather than "cannot find module".
		{"main.go:6:2: cannot find module providing package example.com/a/b: import lookup disabled by -mod=vendor", "vendor-lookup-disabled"},
		{"main.go:6:2: cannot find module providing package example.com/a/b: module lookup disabled by GOPROXY=off", "goproxy-off"},
		// The readonly variant rather than the general one.
		{"go: updates to go.mod needed, disabled by -mod=readonly; to update it:", "gomod-updates-readonly"},
		// Missing sum for a package / a go.mod rather than the bare message.
		{"main.go:3:8: missing go.sum entry for module providing package example.com/a (imported by example.com/app); to add:", "missing-gosum-package"},
		{"go: example.com/a@v1.0.0: missing go.sum entry for go.mod file; to add it:", "missing-gosum-gomod"},
		// checksum database mismatch rather than go.sum mismatch.
		{"go: example.com/a@v1.0.0: verifying go.mod: checksum mismatch", "sumdb-checksum-mismatch"},
		{"verifying example.com/a@v1.0.0/go.mod: checksum mismatch", "gomod-checksum-mismatch"},
		// go.mod requires newer go rather than a dependency.
		{"go: go.mod requires go >= 1.23.0 (running go 1.21.5; GOTOOLCHAIN=local)", "gomod-requires-newer-go"},
		{"go: go.work requires go >= 1.23.0 (running go 1.21.5; GOTOOLCHAIN=local)", "gomod-requires-newer-go"},
		{"go: module example.com/a@v1.0.0 requires go >= 1.23.0 (running go 1.21.5; GOTOOLCHAIN=local)", "module-requires-newer-go"},
		// Missing VCS tool rather than git ls-remote failure.
		{`go: example.com/a@v1.0.0: git ls-remote -q origin in /root/go/pkg/mod/cache/vcs/aa: exec: "git": executable file not found in $PATH`, "vcs-not-installed"},
		// No space left rather than anything else on the line.
		{"go: example.com/a@v1.0.0: write /root/go/pkg/mod/cache/download/example.com/a/@v/v1.0.0.zip: no space left on device", "no-space-left"},
	} {
		e, ok := x.Classify(tc.line)
		if !ok || e.ID != tc.id {
			t.Errorf("Classify(%q) = %q, want %q", tc.line, e.ID, tc.id)
		}
	}
}

func TestDeduplicationAndOrder(t *testing.T) {
	in := strings.Join([]string{
		"go: downloading example.com/a v1.0.0",
		"go: example.com/a@v1.0.0: reading https://proxy.example.com/example.com/a/@v/v1.0.0.info: 404 Not Found", // 2
		"go: example.com/b@v2.0.0: invalid version: unknown revision v2.0.0",                                      // 3
		"go: example.com/a@v1.0.0: reading https://proxy.example.com/example.com/a/@v/v1.0.0.info: 404 Not Found", // dup of 2
		"verifying example.com/c@v1.1.0: checksum mismatch",                                                       // 5
		"\tdownloaded: h1:AAAA=",
		"\tgo.sum:     h1:BBBB=",
		"",
		"SECURITY ERROR",
		"This download does NOT match an earlier download recorded in go.sum.",
		"2025-01-02T03:04:05.678Z go: example.com/b@v2.0.0: invalid version: unknown revision v2.0.0",                                       // dup of 3 (timestamp ignored)
		"go: example.com/a@v1.0.0: reading https://proxy.example.com/example.com/a/@v/v1.0.0.info: 404 Not Found",                           // dup of 2
		"go: example.com/d@v1.0.0: reading https://proxy.example.com/example.com/d/@v/v1.0.0.info: 404 Not Found",                           // 13: other module
		`go: example.com/e@v1.0.0: Get "https://proxy.example.com/example.com/e/@v/list": dial tcp: lookup proxy.example.com: no such host`, // 14
		`go: example.com/f@v1.0.0: Get "https://proxy.example.com/example.com/f/@v/list": dial tcp: lookup proxy.example.com: no such host`, // same host
		`go: example.com/g@v1.0.0: Get "https://other.example.com/example.com/g/@v/list": dial tcp: lookup other.example.com: no such host`, // 16: other host
	}, "\n")
	fs := explainString(t, in)
	exp := []want{
		{"proxy-not-found", 2, "example.com/a@v1.0.0"},
		{"invalid-version-unknown-revision", 3, "example.com/b@v2.0.0"},
		{"checksum-mismatch", 5, "example.com/c@v1.1.0"},
		{"proxy-not-found", 13, "example.com/d@v1.0.0"},
		{"dns-no-such-host", 14, "example.com/e@v1.0.0"},
		{"dns-no-such-host", 16, "example.com/g@v1.0.0"},
	}
	counts := []int{3, 2, 1, 1, 2, 1}
	if len(fs) != len(exp) {
		t.Fatalf("got %d findings %v, want %v", len(fs), ids(fs), exp)
	}
	for i, f := range fs {
		if (want{f.ID, f.Line, f.Module}) != exp[i] || f.Count != counts[i] {
			t.Errorf("finding %d = {%s %d %s} x%d, want %v x%d", i, f.ID, f.Line, f.Module, f.Count, exp[i], counts[i])
		}
	}
	for i := 1; i < len(fs); i++ {
		if fs[i].Line <= fs[i-1].Line {
			t.Errorf("findings out of input order: %d after %d", fs[i].Line, fs[i-1].Line)
		}
	}
}

func TestSecurityBannerFoldedIntoMismatch(t *testing.T) {
	fs := explainString(t, string(readSample(t, "checksum-mismatch")))
	if len(fs) != 1 || fs[0].ID != "checksum-mismatch" {
		t.Fatalf("got %v, want a single checksum-mismatch", ids(fs))
	}
	// Without the line naming the module, the banner is reported on its own.
	fs = explainString(t, "SECURITY ERROR\nThis download does NOT match the one reported by the checksum server.\n")
	if len(fs) != 1 || fs[0].ID != "security-error" || fs[0].Line != 1 {
		t.Fatalf("got %v, want one security-error on line 1", fs)
	}
}

func TestSuggestedCommandsCaptured(t *testing.T) {
	fs := explainString(t, string(readSample(t, "missing-gosum-package")))
	if len(fs) != 1 {
		t.Fatalf("got %v", ids(fs))
	}
	if got := fs[0].Commands; len(got) == 0 || got[0] != "go get example.com/app/cmd/server" {
		t.Errorf("commands = %q, want the go command's own suggestion first", got)
	}
	// A suggestion containing shell syntax is not copied.
	fs = explainString(t, "go: example.com/a@v1.0.0: missing go.sum entry; to add it:\n\tgo mod download example.com/a; rm -rf /\n")
	for _, c := range fs[0].Commands {
		if strings.Contains(c, "rm") {
			t.Errorf("unsafe suggestion copied: %q", c)
		}
	}
}

func TestCommandsFilledAndSafe(t *testing.T) {
	fs := explainString(t, string(readSample(t, "module-path-mismatch")))
	wantCmd := "go mod edit -replace=github.com/orig/lib=github.com/fork/lib@v1.2.0"
	if len(fs) != 1 || !contains(fs[0].Commands, wantCmd) {
		t.Fatalf("commands = %q, want %q", fs[0].Commands, wantCmd)
	}
	// Values with shell syntax never reach a command; a placeholder does.
	fs = explainString(t, "go: example.com/a@v1.0.0: parsing go.mod:\n\tmodule declares its path as: $(touch${IFS}/tmp/x)\n")
	if len(fs) != 1 {
		t.Fatalf("got %v", ids(fs))
	}
	for _, c := range fs[0].Commands {
		if strings.Contains(c, "touch") {
			t.Errorf("unsafe value in command %q", c)
		}
	}
	if !contains(fs[0].Commands, "go get MODULE_PATH@latest") {
		t.Errorf("commands = %q, want placeholder for the unsafe value", fs[0].Commands)
	}
	// Unknown module: placeholders.
	fs = explainString(t, "go: updates to go.sum needed, disabled by -mod=readonly\n")
	if len(fs) != 1 || len(fs[0].Commands) == 0 {
		t.Fatalf("got %v", fs)
	}
}

func contains(list []string, s string) bool {
	for _, x := range list {
		if x == s {
			return true
		}
	}
	return false
}

func TestServerResponseIsRemote(t *testing.T) {
	// The network error in the proxy's detail happened on the proxy, not
	// here: it must not be explained as a local DNS problem.
	fs := explainString(t, string(readSample(t, "sumdb-lookup-not-found")))
	for _, f := range fs {
		if f.ID == "dns-no-such-host" {
			t.Errorf("server-side DNS failure reported as local: %+v", f)
		}
	}
}

func TestGenericErrorsNeedGoContext(t *testing.T) {
	for _, l := range []string{
		"    parse_test.go:40: unexpected EOF",
		"Error: write /data/out.bin: no space left on device",
		"error: dial tcp 10.0.0.1:5432: i/o timeout",
		"open /etc/app.conf: too many open files",
	} {
		if fs := explainString(t, l); len(fs) != 0 {
			t.Errorf("Explain(%q) = %v, want nothing", l, ids(fs))
		}
	}
	fs := explainString(t, "go: example.com/a@v1.0.0: reading https://proxy.example.com/example.com/a/@v/v1.0.0.zip: unexpected EOF")
	if len(fs) != 1 || fs[0].ID != "unexpected-eof" {
		t.Errorf("got %v, want unexpected-eof", ids(fs))
	}
}

func TestLineEndingsAndColours(t *testing.T) {
	in := "go: downloading example.com/a v1.0.0\r\n" +
		"\x1b[31mgo: example.com/a@v1.0.0: invalid version: unknown revision v1.0.0\x1b[0m\r\n" +
		"go: example.com/b@v1.0.0: zip: not a valid zip file" // no final newline
	fs := explainString(t, in)
	exp := []want{
		{"invalid-version-unknown-revision", 2, "example.com/a@v1.0.0"},
		{"zip-not-valid", 3, "example.com/b@v1.0.0"},
	}
	if len(fs) != 2 || (want{fs[0].ID, fs[0].Line, fs[0].Module}) != exp[0] || (want{fs[1].ID, fs[1].Line, fs[1].Module}) != exp[1] {
		t.Fatalf("got %+v, want %v", fs, exp)
	}
	if strings.ContainsAny(fs[0].Text, "\x1b\r") {
		t.Errorf("text not cleaned: %q", fs[0].Text)
	}
}

// bigLine yields a single line of n bytes, then the rest.
type bigLine struct {
	n    int
	rest string
}

func (b *bigLine) Read(p []byte) (int, error) {
	if b.n > 0 {
		k := min(len(p), b.n)
		for i := range p[:k] {
			p[i] = 'x'
		}
		b.n -= k
		return k, nil
	}
	if b.rest == "" {
		return 0, io.EOF
	}
	k := copy(p, b.rest)
	b.rest = b.rest[k:]
	return k, nil
}

func TestHugeLineBoundedMemory(t *testing.T) {
	const size = 10 << 20
	var before, after runtime.MemStats
	runtime.GC()
	runtime.ReadMemStats(&before)
	fs, err := Explain(&bigLine{n: size, rest: "\ngo: example.com/a@v1.0.0: zip: not a valid zip file\n"})
	runtime.ReadMemStats(&after)
	if err != nil {
		t.Fatal(err)
	}
	if len(fs) != 1 || fs[0].Line != 2 || fs[0].ID != "zip-not-valid" {
		t.Fatalf("got %+v, want zip-not-valid on line 2", fs)
	}
	if alloc := after.TotalAlloc - before.TotalAlloc; alloc > size/2 {
		t.Errorf("allocated %d bytes for a %d-byte line: the line was buffered", alloc, size)
	}

	// An error at the start of a huge line: found, text bounded.
	huge := "go: example.com/a@v1.0.0: reading https://proxy.example.com/example.com/a/@v/v1.0.0.zip: 404 Not Found " + strings.Repeat("y", size)
	fs, err = Explain(strings.NewReader(huge))
	if err != nil {
		t.Fatal(err)
	}
	if len(fs) != 1 || fs[0].ID != "proxy-not-found" || len(fs[0].Text) > MaxTextBytes+8 {
		t.Fatalf("got %d findings, text %d bytes", len(fs), len(fs[0].Text))
	}
}

type failingReader struct {
	r   io.Reader
	err error
}

func (f *failingReader) Read(p []byte) (int, error) {
	n, err := f.r.Read(p)
	if err == io.EOF {
		return n, f.err
	}
	return n, err
}

func TestReadErrorReturnsFindingsSoFar(t *testing.T) {
	boom := errors.New("boom")
	fs, err := Explain(&failingReader{strings.NewReader("go: example.com/a@v1.0.0: zip: not a valid zip file\n"), boom})
	if !errors.Is(err, boom) {
		t.Fatalf("err = %v, want boom", err)
	}
	if len(fs) != 1 {
		t.Fatalf("got %v", ids(fs))
	}
}

func TestExplainerConcurrentUse(t *testing.T) {
	x := New()
	in := string(readSample(t, "proxy-gone"))
	var wg sync.WaitGroup
	for i := 0; i < 8; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			fs, err := x.Explain(strings.NewReader(in))
			if err != nil || len(fs) != 3 {
				t.Errorf("got %v, %v", ids(fs), err)
			}
		}()
	}
	wg.Wait()
}

func TestWriteText(t *testing.T) {
	var b bytes.Buffer
	if err := WriteText(&b, nil); err != nil {
		t.Fatal(err)
	}
	if b.String() != "no module download errors found\n" {
		t.Errorf("empty output = %q", b.String())
	}

	b.Reset()
	fs := explainString(t, string(readSample(t, "proxy-gone"))+"go: github.com/acme-corp/billing@v1.3.0: reading https://proxy.example.com/github.com/acme-corp/billing/@v/v1.3.0.mod: 410 Gone\n")
	if err := WriteText(&b, fs); err != nil {
		t.Fatal(err)
	}
	out := b.String()
	for _, s := range []string{
		"[1] Proxy returned 410 Gone (proxy-gone)",
		"    line 4:  go: github.com/acme-corp/billing@v1.3.0: reading",
		"    module:  github.com/acme-corp/billing@v1.3.0",
		"    seen:    2 times",
		"    cause:   ",
		"    fix:     ",
		"    run:\n        go env -w GOPRIVATE=github.com/acme-corp\n",
		"[3] git: terminal prompts disabled",
	} {
		if !strings.Contains(out, s) {
			t.Errorf("output lacks %q:\n%s", s, out)
		}
	}
	lines := strings.Split(strings.TrimSuffix(out, "\n"), "\n")
	last := lines[len(lines)-1]
	if last != "3 module download errors found (4 occurrences): proxy-gone, server-response-not-found, git-terminal-prompts-disabled" {
		t.Errorf("summary = %q", last)
	}
	for _, l := range lines {
		if strings.HasPrefix(l, "    cause:") || strings.HasPrefix(l, "             ") {
			if len(l) > textWidth && strings.Contains(strings.TrimSpace(l), " ") {
				t.Errorf("line not wrapped (%d > %d): %q", len(l), textWidth, l)
			}
		}
	}

	// Write errors are returned.
	if err := WriteText(errWriterFunc(func([]byte) (int, error) { return 0, io.ErrClosedPipe }), fs); !errors.Is(err, io.ErrClosedPipe) {
		t.Errorf("err = %v, want ErrClosedPipe", err)
	}
}

type errWriterFunc func([]byte) (int, error)

func (f errWriterFunc) Write(p []byte) (int, error) { return f(p) }

func TestManyDistinctFindingsBounded(t *testing.T) {
	var b strings.Builder
	for i := 0; i < MaxFindings+50; i++ {
		fmt.Fprintf(&b, "go: example.com/m@v1.0.%d: invalid version: unknown revision v1.0.%d\n", i, i)
	}
	fs := explainString(t, b.String())
	if len(fs) != MaxFindings {
		t.Fatalf("got %d findings, want the cap %d", len(fs), MaxFindings)
	}
}
