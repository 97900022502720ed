package prefetch

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"

	"golang.org/x/mod/module"
	"golang.org/x/sync/errgroup"

	"github.com/modproxy/modproxy/internal/upstream"
)

// ModCacheFetcher warms the local module cache by running the go command,
// which downloads through its own GOPROXY, verifies against its own GOSUMDB
// and takes the module cache's locks. It is safe for concurrent use.
//
// Module versions that need their zip are given to "go mod download -json";
// those that need only their go.mod (a go.sum "/go.mod" line) to
// "go list -m -e -json", which fetches .info and .mod. The go command runs
// in an empty temporary directory with GOWORK=off, so no main module is
// involved, and with GOFLAGS rewritten to use -mod=mod.
//
// The go command's failures are reported with its message and not retried
// here: telling a missing module from an outage would mean matching the
// text of its errors. A version whose files are all in the module cache is
// reported Cached and not given to the go command.
type ModCacheFetcher struct {
	opts Options
}

// NewModCacheFetcher returns a Fetcher for the module cache of the go
// command configured by opts.GoCommand and opts.Env.
func NewModCacheFetcher(opts Options) *ModCacheFetcher {
	return &ModCacheFetcher{opts: opts.withDefaults()}
}

// env returns the go command's environment.
func (f *ModCacheFetcher) env() []string {
	if f.opts.Env != nil {
		return f.opts.Env
	}
	return os.Environ()
}

// goEnv asks the go command for GOMODCACHE and GOFLAGS.
func (f *ModCacheFetcher) goEnv(ctx context.Context, dir string) (modcache, goflags string, err error) {
	cmd := exec.CommandContext(ctx, f.opts.GoCommand, "env", "-json", "GOMODCACHE", "GOFLAGS")
	cmd.Dir = dir
	cmd.Env = append(append([]string(nil), f.env()...), "GOWORK=off")
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		return "", "", fmt.Errorf("go env: %v: %s", err, upstream.Sanitize(stderr.String(), 500))
	}
	var m map[string]string
	if err := json.Unmarshal(out, &m); err != nil {
		return "", "", fmt.Errorf("go env: %w", err)
	}
	if m["GOMODCACHE"] == "" {
		return "", "", errors.New("go env: GOMODCACHE is not set")
	}
	return m["GOMODCACHE"], m["GOFLAGS"], nil
}

// modGoFlags returns goflags with every -mod setting replaced by -mod=mod.
func modGoFlags(goflags string) string {
	var out []string
	for _, f := range strings.Fields(goflags) {
		name, _, _ := strings.Cut(strings.TrimLeft(f, "-"), "=")
		if name == "mod" {
			continue
		}
		out = append(out, f)
	}
	return strings.Join(append(out, "-mod=mod"), " ")
}

// cached reports whether every file m needs is in the module cache's
// download directory, and their total size.
func cached(modcache string, m Module) (bool, int64) {
	ep, err := module.EscapePath(m.Path)
	if err != nil {
		return false, 0
	}
	ev, err := module.EscapeVersion(m.Version)
	if err != nil {
		return false, 0
	}
	base := filepath.Join(modcache, "cache", "download", filepath.FromSlash(ep), "@v", ev)
	exts := []string{".info", ".mod"}
	if m.Need&NeedZip != 0 {
		// The go command writes .ziphash after the zip is complete and
		// checked; without it the zip counts as not downloaded.
		exts = append(exts, ".zip", ".ziphash")
	}
	var size int64
	for _, ext := range exts {
		st, err := os.Stat(base + ext)
		if err != nil || !st.Mode().IsRegular() {
			return false, 0
		}
		if ext != ".ziphash" {
			size += st.Size()
		}
	}
	return true, size
}

// Prefetch implements Fetcher.
func (f *ModCacheFetcher) Prefetch(ctx context.Context, mods []Module) (*Report, error) {
	start := f.opts.Now()
	dir, err := os.MkdirTemp("", "modproxy-prefetch-")
	if err != nil {
		return nil, err
	}
	defer os.RemoveAll(dir)
	modcache, goflags, err := f.goEnv(ctx, dir)
	if err != nil {
		return nil, err
	}
	env := append(append([]string(nil), f.env()...), "GOFLAGS="+modGoFlags(goflags), "GOWORK=off")
	rep := &Report{Target: modcache, Mode: "modcache", Modules: len(mods)}
	var full, modOnly []Module
	for _, m := range mods {
		if ok, size := cached(modcache, m); ok {
			rep.Results = append(rep.Results, Result{Path: m.Path, Version: m.Version, Kind: kindName(m), Outcome: Cached, Bytes: size})
			continue
		}
		if m.Need&(NeedZip|NeedInfo) != 0 {
			full = append(full, m)
		} else {
			modOnly = append(modOnly, m)
		}
	}
	type batch struct {
		mods []Module
		args []string
	}
	var batches []batch
	for _, group := range []struct {
		mods []Module
		args []string
	}{
		{full, []string{"mod", "download", "-json"}},
		{modOnly, []string{"list", "-m", "-e", "-json"}},
	} {
		for i := 0; i < len(group.mods); i += f.opts.BatchSize {
			batches = append(batches, batch{group.mods[i:min(i+f.opts.BatchSize, len(group.mods))], group.args})
		}
	}
	var (
		mu    sync.Mutex
		done  = len(rep.Results)
		total = len(mods)
	)
	if f.opts.Progress != nil && done > 0 {
		f.opts.Progress(done, total)
	}
	g := errgroup.Group{}
	g.SetLimit(f.opts.Concurrency)
	for _, b := range batches {
		g.Go(func() error {
			results := f.runBatch(ctx, dir, env, modcache, b.args, b.mods)
			mu.Lock()
			defer mu.Unlock()
			rep.Results = append(rep.Results, results...)
			done += len(b.mods)
			if f.opts.Progress != nil {
				f.opts.Progress(done, total)
			}
			return nil
		})
	}
	_ = g.Wait()
	rep.Duration = Seconds(f.opts.Now().Sub(start))
	rep.finish()
	return rep, nil
}

func kindName(m Module) string {
	if m.Need&(NeedZip|NeedInfo) != 0 {
		return "module"
	}
	return "mod"
}

// goModule is one JSON object of "go mod download -json" or
// "go list -m -json". Error is a string in the first and an object with
// an Err field in the second.
type goModule struct {
	Path, Version    string
	Error            json.RawMessage
	Info, GoMod, Zip string
}

func (g goModule) errorText() string {
	if len(g.Error) == 0 || string(g.Error) == "null" {
		return ""
	}
	var s string
	if json.Unmarshal(g.Error, &s) == nil {
		return s
	}
	var e struct{ Err string }
	if json.Unmarshal(g.Error, &e) == nil && e.Err != "" {
		return e.Err
	}
	return string(g.Error)
}

// runBatch runs one go command for mods and returns their results.
func (f *ModCacheFetcher) runBatch(ctx context.Context, dir string, env []string, modcache string, args []string, mods []Module) []Result {
	args = append([]string(nil), args...)
	for _, m := range mods {
		args = append(args, m.String())
	}
	cmd := exec.CommandContext(ctx, f.opts.GoCommand, args...)
	cmd.Dir = dir
	cmd.Env = env
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	runErr := cmd.Run()
	got := map[module.Version]goModule{}
	dec := json.NewDecoder(&stdout)
	for {
		var gm goModule
		if err := dec.Decode(&gm); err != nil {
			if err != io.EOF && runErr == nil {
				runErr = fmt.Errorf("reading go command output: %w", err)
			}
			break
		}
		got[module.Version{Path: gm.Path, Version: gm.Version}] = gm
	}
	results := make([]Result, 0, len(mods))
	for _, m := range mods {
		res := Result{Path: m.Path, Version: m.Version, Kind: kindName(m), Attempts: 1}
		gm, ok := got[module.Version{Path: m.Path, Version: m.Version}]
		switch {
		case ctx.Err() != nil:
			res.Outcome, res.Error = Failed, "canceled: "+context.Cause(ctx).Error()
		case !ok:
			msg := upstream.Sanitize(stderr.String(), 500)
			if msg == "" && runErr != nil {
				msg = runErr.Error()
			}
			if msg == "" {
				msg = "the go command did not report this module"
			}
			res.Outcome, res.Error = Failed, "go "+strings.Join(args[:2], " ")+": "+msg
		case gm.errorText() != "":
			res.Outcome, res.Error = Failed, upstream.Sanitize(gm.errorText(), 500)
		default:
			if ok, size := cached(modcache, m); ok {
				res.Outcome, res.Bytes = Fetched, size
			} else {
				res.Outcome, res.Error = Failed, "the go command reported success but the files are not in the module cache"
			}
		}
		results = append(results, res)
	}
	return results
}
