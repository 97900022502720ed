// Package direct is an upstream.Fetcher that fetches modules from their
// version control systems by running the go command with GOPROXY=direct,
// in a private GOPATH and module cache of its own. It serves `direct`
// entries of an upstream list, typically for private modules.
//
// Protocol files map to go commands:
//
//	@v/list              go list -m -versions -json -e M
//	@latest, query .info go list -m -json -e M@QUERY
//	.info, .mod          go list -m -json -e M@V (downloads only the go.mod)
//	.zip                 go mod download -json M@V
//
// Credentials come from the server's own environment (netrc, git
// configuration, GOAUTH), which the go command reads as usual. The go
// command runs with GOSUMDB=off: the content goes through modproxy's own
// admission (validation and, for public paths, checksum verification).
//
// Errors are classified from the go command's JSON: a module or version
// the go command reports an Error for is "not found" (an *upstream.Error
// with NotExist set, so "," lists fall through); a go command that could not
// run, timed out or printed no JSON is unavailable. Concurrency and time
// are bounded. A Fetcher is safe for concurrent use; Close removes its
// private module cache.
package direct

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"time"

	"io"

	"github.com/modproxy/modproxy/internal/artifact"
	"github.com/modproxy/modproxy/internal/upstream"
)

// Options configures a Fetcher.
type Options struct {
	GoCommand   string        // default "go" from PATH
	Dir         string        // parent of the private GOPATH; default os.TempDir()
	Concurrency int           // go commands at once; default 4
	Timeout     time.Duration // per go command; default 5m
	Env         []string      // extra environment (tests); appended last
}

// Fetcher runs the go command to fetch from version control.
type Fetcher struct {
	opts Options
	root string
	sem  chan struct{}
}

// New creates the private GOPATH.
func New(opts Options) (*Fetcher, error) {
	if opts.GoCommand == "" {
		opts.GoCommand = "go"
	}
	if opts.Concurrency <= 0 {
		opts.Concurrency = 4
	}
	if opts.Timeout <= 0 {
		opts.Timeout = 5 * time.Minute
	}
	if _, err := exec.LookPath(opts.GoCommand); err != nil {
		return nil, fmt.Errorf("direct upstream needs the go command: %w", err)
	}
	root, err := os.MkdirTemp(opts.Dir, "modproxy-direct-")
	if err != nil {
		return nil, fmt.Errorf("direct upstream: %w", err)
	}
	if err := os.MkdirAll(filepath.Join(root, "work"), 0o755); err != nil {
		return nil, err
	}
	return &Fetcher{opts: opts, root: root, sem: make(chan struct{}, opts.Concurrency)}, nil
}

// Close removes the private module cache (its files are read-only, as the
// go command leaves them).
func (f *Fetcher) Close() error {
	_ = filepath.WalkDir(f.root, func(p string, d os.DirEntry, err error) error {
		if err == nil && d.IsDir() {
			_ = os.Chmod(p, 0o755)
		}
		return nil
	})
	return os.RemoveAll(f.root)
}

// String names the fetcher in logs.
func (f *Fetcher) String() string { return "direct" }

type goError struct{ Err string }

type listJSON struct {
	Path     string
	Version  string
	Versions []string
	Time     *time.Time
	GoMod    string
	Error    *goError
}

type downloadJSON struct {
	Path, Version, Info, GoMod, Zip string
	Error                           string
}

// Fetch implements upstream.Fetcher.
func (f *Fetcher) Fetch(ctx context.Context, path string) (*upstream.Response, error) {
	req, err := artifact.Parse(path)
	if err != nil {
		return nil, &upstream.Error{Upstream: "direct", Path: path, NotExist: true, Msg: "not a module path", Err: err}
	}
	fail := func(msg string) (*upstream.Response, error) {
		return nil, &upstream.Error{Upstream: "direct", Path: path, NotExist: true, Msg: upstream.Sanitize(msg, 300)}
	}
	switch req.Kind {
	case artifact.List:
		var l listJSON
		if err := f.run(ctx, path, &l, "list", "-m", "-versions", "-json", "-e", req.Module); err != nil {
			return nil, err
		}
		if l.Error != nil {
			return fail(l.Error.Err)
		}
		var b bytes.Buffer
		for _, v := range l.Versions {
			b.WriteString(v + "\n")
		}
		return bytesResponse(b.Bytes()), nil
	case artifact.Latest, artifact.Query, artifact.Info, artifact.Mod:
		query := req.Version
		if req.Kind == artifact.Latest {
			query = "latest"
		}
		var l listJSON
		if err := f.run(ctx, path, &l, "list", "-m", "-json", "-e", req.Module+"@"+query); err != nil {
			return nil, err
		}
		if l.Error != nil {
			return fail(l.Error.Err)
		}
		if req.Kind == artifact.Mod {
			data, err := os.ReadFile(l.GoMod)
			if err != nil {
				return nil, &upstream.Error{Upstream: "direct", Path: path, Msg: "reading go.mod from the go command's cache", Err: err}
			}
			return bytesResponse(data), nil
		}
		info := map[string]any{"Version": l.Version}
		if l.Time != nil {
			info["Time"] = l.Time.UTC()
		}
		data, _ := json.Marshal(info)
		return bytesResponse(data), nil
	case artifact.Zip:
		var d downloadJSON
		if err := f.run(ctx, path, &d, "mod", "download", "-json", req.Module+"@"+req.Version); err != nil {
			return nil, err
		}
		if d.Error != "" {
			return fail(d.Error)
		}
		zf, err := os.Open(d.Zip)
		if err != nil {
			return nil, &upstream.Error{Upstream: "direct", Path: path, Msg: "opening zip from the go command's cache", Err: err}
		}
		st, err := zf.Stat()
		if err != nil {
			zf.Close()
			return nil, err
		}
		return &upstream.Response{Body: zf, Size: st.Size(), Source: "direct"}, nil
	}
	return fail("unsupported request")
}

func bytesResponse(b []byte) *upstream.Response {
	return &upstream.Response{Body: io.NopCloser(bytes.NewReader(b)), Size: int64(len(b)), Source: "direct"}
}

// run runs the go command and decodes its JSON output into v. The go
// command exits non-zero when it reports an Error in the JSON; that is
// not a failure to run.
func (f *Fetcher) run(ctx context.Context, path string, v any, args ...string) error {
	select {
	case f.sem <- struct{}{}:
	case <-ctx.Done():
		return &upstream.Error{Upstream: "direct", Path: path, Msg: "waiting for a go command slot", Timeout: true, Err: ctx.Err()}
	}
	defer func() { <-f.sem }()
	ctx, cancel := context.WithTimeout(ctx, f.opts.Timeout)
	defer cancel()
	cmd := exec.CommandContext(ctx, f.opts.GoCommand, args...)
	cmd.Dir = filepath.Join(f.root, "work")
	cmd.Env = append(os.Environ(),
		"GOPATH="+filepath.Join(f.root, "gopath"),
		"GOMODCACHE="+filepath.Join(f.root, "gopath", "pkg", "mod"),
		"GOCACHE="+filepath.Join(f.root, "gocache"),
		"GOPROXY=direct", "GOSUMDB=off", "GOFLAGS=-mod=mod", "GOWORK=off", "GOTOOLCHAIN=local",
		"GIT_TERMINAL_PROMPT=0", "GOTELEMETRY=off",
	)
	cmd.Env = append(cmd.Env, f.opts.Env...)
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	runErr := cmd.Run()
	if ctx.Err() != nil {
		return &upstream.Error{Upstream: "direct", Path: path, Msg: "go " + args[0] + " timed out", Timeout: true, Err: ctx.Err()}
	}
	if err := json.Unmarshal(stdout.Bytes(), v); err != nil || stdout.Len() == 0 {
		msg := strings.TrimSpace(stderr.String())
		if msg == "" && runErr != nil {
			msg = runErr.Error()
		}
		return &upstream.Error{Upstream: "direct", Path: path, Msg: "go " + args[0] + " failed: " + upstream.Sanitize(msg, 300), Err: errors.Join(runErr, err)}
	}
	return nil
}
