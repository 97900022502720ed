package goauth

import (
	"bytes"
	"crypto/tls"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"slices"
	"strings"
	"sync"
	"testing"

	"golang.org/x/mod/module"
	"golang.org/x/mod/zip"

	"github.com/modproxy/modproxy/internal/tlsconf/tlstest"
)

// Environment of the test binary acting as the GOAUTH command.
const (
	envHelperFile = "GOAUTH_TEST_CREDENTIALS"
	envHelperLog  = "GOAUTH_TEST_LOG"
)

// TestMain makes the test binary the GOAUTH command when the go command
// runs it from TestGoCommand: it records its arguments and stdin, then
// does what `modproxy auth` does.
func TestMain(m *testing.M) {
	if path := os.Getenv(envHelperFile); path != "" {
		os.Exit(helperMain(path, os.Getenv(envHelperLog)))
	}
	os.Exit(m.Run())
}

type invocation struct {
	Args  []string
	Stdin string
}

func helperMain(path, logFile string) int {
	in, err := io.ReadAll(os.Stdin)
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	rec, err := json.Marshal(invocation{Args: os.Args[1:], Stdin: string(in)})
	if err == nil {
		var f *os.File
		if f, err = os.OpenFile(logFile, os.O_WRONLY|os.O_APPEND|os.O_CREATE, 0o600); err == nil {
			_, err = f.Write(append(rec, '\n'))
			f.Close()
		}
	}
	if err == nil {
		err = Run(path, os.Args[1:], bytes.NewReader(in), os.Stdout)
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, "modproxy auth:", err)
		return 1
	}
	return 0
}

// privateProxy serves one module and answers 401 to requests without the
// token.
type privateProxy struct {
	*httptest.Server
	token string
	mu    sync.Mutex
	seen  []string // "PATH AUTHORIZATION"
}

func newPrivateProxy(t *testing.T, ca *tlstest.CA, token string) *privateProxy {
	t.Helper()
	mv := module.Version{Path: "corp.example.com/lib", Version: "v1.0.0"}
	gomod := "module corp.example.com/lib\n\ngo 1.21\n"
	src := t.TempDir()
	for name, data := range map[string]string{"go.mod": gomod, "lib.go": "package lib\n"} {
		if err := os.WriteFile(filepath.Join(src, name), []byte(data), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	var zipped bytes.Buffer
	if err := zip.CreateFromDir(&zipped, mv, src); err != nil {
		t.Fatal(err)
	}
	files := map[string]string{
		"/corp.example.com/lib/@v/list":        "v1.0.0\n",
		"/corp.example.com/lib/@v/v1.0.0.info": `{"Version":"v1.0.0","Time":"2024-01-01T00:00:00Z"}`,
		"/corp.example.com/lib/@v/v1.0.0.mod":  gomod,
		"/corp.example.com/lib/@v/v1.0.0.zip":  zipped.String(),
	}
	p := &privateProxy{token: token}
	p.Server = httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		p.mu.Lock()
		p.seen = append(p.seen, r.URL.Path+" "+r.Header.Get("Authorization"))
		p.mu.Unlock()
		if r.Header.Get("Authorization") != "Bearer "+p.token {
			w.Header().Set("WWW-Authenticate", `Basic realm="modproxy"`)
			http.Error(w, "unauthorized", http.StatusUnauthorized)
			return
		}
		body, ok := files[r.URL.Path]
		if !ok {
			http.NotFound(w, r)
			return
		}
		io.WriteString(w, body)
	}))
	p.TLS = &tls.Config{Certificates: []tls.Certificate{ca.Server(t).TLS}}
	p.StartTLS()
	t.Cleanup(p.Close)
	return p
}

func (p *privateProxy) requests() []string {
	p.mu.Lock()
	defer p.mu.Unlock()
	return slices.Clone(p.seen)
}

// goDownload runs `go mod download` of the module through proxyURL with
// GOAUTH set to this test binary reading creds.
func goDownload(t *testing.T, proxyURL, caFile, creds string) (ok bool, out string, calls []invocation) {
	t.Helper()
	root := t.TempDir()
	logFile := filepath.Join(root, "helper.log")
	self, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command("go", "mod", "download", "-json", "corp.example.com/lib@v1.0.0")
	cmd.Dir = root
	cmd.Env = append(os.Environ(),
		"GOAUTH='"+self+"'", envHelperFile+"="+creds, envHelperLog+"="+logFile,
		"SSL_CERT_FILE="+caFile, "NETRC="+filepath.Join(root, "no-netrc"),
		"HOME="+root, "GOPATH="+filepath.Join(root, "gopath"), "GOMODCACHE="+filepath.Join(root, "modcache"),
		"GOCACHE="+filepath.Join(root, "gocache"), "GOPROXY="+proxyURL, "GOSUMDB=off",
		"GOFLAGS=-modcacherw", "GONOSUMDB=", "GONOSUMCHECK=", "GOPRIVATE=", "GONOPROXY=", "GOINSECURE=",
		"GOTOOLCHAIN=local", "GOTELEMETRY=off", "GOENV=off", "GOWORK=off",
	)
	o, err := cmd.CombinedOutput()
	if _, isExit := err.(*exec.ExitError); err != nil && !isExit {
		t.Fatal(err)
	}
	data, rerr := os.ReadFile(logFile)
	if rerr != nil {
		t.Fatalf("the GOAUTH command was never run: %v\n%s", rerr, o)
	}
	for _, line := range strings.Split(strings.TrimSpace(string(data)), "\n") {
		var c invocation
		if err := json.Unmarshal([]byte(line), &c); err != nil {
			t.Fatal(err)
		}
		calls = append(calls, c)
	}
	return err == nil, string(o), calls
}

// TestGoCommand checks the protocol against the real go command over
// HTTPS with a test CA.
func TestGoCommand(t *testing.T) {
	if _, err := exec.LookPath("go"); err != nil {
		t.Skip("go command not found")
	}
	if runtime.GOOS == "darwin" || runtime.GOOS == "windows" {
		t.Skip("the go command honours SSL_CERT_FILE only on other systems")
	}
	ca := tlstest.NewCA(t, "test CA")
	caFile := ca.WriteCA(t, t.TempDir(), "ca.pem")
	const token = "mp_TeamAToken0123456789abcdefghijklmnopqrstuvw"
	proxy := newPrivateProxy(t, ca, token)

	t.Run("saved credential", func(t *testing.T) {
		creds := filepath.Join(t.TempDir(), FileName)
		login(t, creds, proxy.URL, token)
		login(t, creds, "https://elsewhere.example.com", "mp_other")
		ok, out, calls := goDownload(t, proxy.URL, caFile, creds)
		if !ok {
			t.Fatalf("go mod download failed:\n%s", out)
		}
		// One run before the first fetch: no argument, no input.
		if len(calls) != 1 || len(calls[0].Args) != 0 || calls[0].Stdin != "" {
			t.Errorf("GOAUTH runs %+v, want one without arguments or input", calls)
		}
		for _, r := range proxy.requests() {
			if !strings.HasSuffix(r, " Bearer "+token) {
				t.Errorf("request without the saved token: %s", r)
			}
		}
	})

	t.Run("no credential for the host", func(t *testing.T) {
		proxy.mu.Lock()
		proxy.seen = nil
		proxy.mu.Unlock()
		creds := filepath.Join(t.TempDir(), FileName)
		login(t, creds, "https://elsewhere.example.com", token)
		ok, out, calls := goDownload(t, proxy.URL, caFile, creds)
		if ok {
			t.Fatalf("go mod download succeeded without credentials:\n%s", out)
		}
		for _, r := range proxy.requests() {
			if strings.Contains(r, token) {
				t.Errorf("the credential of another host was sent: %s", r)
			}
		}
		// After a 401, the go command ran the helper again with the URL and
		// the response.
		if len(calls) < 2 || len(calls[0].Args) != 0 {
			t.Fatalf("GOAUTH runs %+v, want the first and then runs with the URL", calls)
		}
		for _, c := range calls[1:] {
			if len(c.Args) != 1 || !strings.HasPrefix(c.Args[0], proxy.URL+"/corp.example.com/lib/@") {
				t.Errorf("a later run with arguments %q, want one URL of the module on %s", c.Args, proxy.URL)
			}
			if !strings.HasPrefix(c.Stdin, "HTTP/1.1 401 Unauthorized\n") || !strings.Contains(c.Stdin, "\nWww-Authenticate: Basic realm=\"modproxy\"\n") || !strings.HasSuffix(c.Stdin, "\n\n") {
				t.Errorf("stdin of a later run:\n%q", c.Stdin)
			}
		}
	})
}
