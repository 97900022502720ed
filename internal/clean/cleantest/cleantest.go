// Package cleantest builds real module caches for tests: the real go
// command downloads modules from an upstreamtest fake upstream on loopback,
// verified by its test checksum database, into a fresh GOMODCACHE in a
// temporary directory. Nothing leaves the machine.
package cleantest

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/modproxy/modproxy/internal/modrefs/modrefstest"
	"github.com/modproxy/modproxy/internal/upstream/upstreamtest"
)

// Env is a hermetic environment for the go command.
type Env struct {
	Root     string // the temporary directory holding everything below
	ModCache string // GOMODCACHE
	Upstream *upstreamtest.Server
	vars     []string
}

// New starts a fake upstream serving mods and returns an environment whose
// go command uses only it: GOPROXY is the upstream, GOSUMDB its test
// database, GOMODCACHE, GOPATH and HOME are fresh, GOFLAGS=-mod=mod (so
// extracted trees are read-only, as users have them), GOTOOLCHAIN=local,
// GOENV=off, GOWORK=off. GOCACHE is the machine's own build cache (content
// addressed, safe to share) to keep builds fast.
func New(t testing.TB, mods []upstreamtest.Module) *Env {
	t.Helper()
	if _, err := exec.LookPath("go"); err != nil {
		t.Skip("no go command")
	}
	up := upstreamtest.New(t, mods)
	root := t.TempDir()
	// Registered after TempDir, so it runs first: the go command made the
	// extracted trees read-only.
	t.Cleanup(func() { MakeWritable(root) })
	gocache := filepath.Join(root, "gocache")
	if out, err := exec.Command("go", "env", "GOCACHE").Output(); err == nil {
		if dir := strings.TrimSpace(string(out)); filepath.IsAbs(dir) {
			gocache = dir
		}
	}
	e := &Env{Root: root, ModCache: filepath.Join(root, "modcache"), Upstream: up}
	for _, kv := range os.Environ() {
		k, _, _ := strings.Cut(kv, "=")
		if strings.HasPrefix(k, "GO") || strings.HasPrefix(k, "CGO_") || k == "HOME" || strings.HasPrefix(k, "XDG_") {
			continue
		}
		e.vars = append(e.vars, kv)
	}
	_, key := up.SumDB()
	e.vars = append(e.vars,
		"HOME="+filepath.Join(root, "home"),
		"XDG_CACHE_HOME="+filepath.Join(root, "home", ".cache"),
		"XDG_CONFIG_HOME="+filepath.Join(root, "home", ".config"),
		"GOPATH="+filepath.Join(root, "gopath"),
		"GOMODCACHE="+e.ModCache,
		"GOCACHE="+gocache,
		"GOPROXY="+up.URL(),
		"GOSUMDB="+key,
		"GOFLAGS=-mod=mod",
		"GONOSUMDB=", "GONOSUMCHECK=", "GONOSUMCHECKDB=", "GOPRIVATE=", "GONOPROXY=", "GOINSECURE=",
		"GOTOOLCHAIN=local", "GOTELEMETRY=off", "GOENV=off", "GOWORK=off", "CGO_ENABLED=0",
		"GIT_TERMINAL_PROMPT=0",
	)
	return e
}

// Vars returns the environment, KEY=VALUE, for exec.Cmd.Env.
func (e *Env) Vars(extra ...string) []string {
	return append(append([]string(nil), e.vars...), extra...)
}

// Lookup returns the value of key in the environment.
func (e *Env) Lookup(key string) (string, bool) {
	v, ok := "", false
	for _, kv := range e.vars {
		if val, found := strings.CutPrefix(kv, key+"="); found {
			v, ok = val, true
		}
	}
	return v, ok
}

// Go runs the go command in dir with the environment plus extra
// (KEY=VALUE) and returns its combined output.
func (e *Env) Go(ctx context.Context, dir string, extra []string, args ...string) (string, error) {
	ctx, cancel := context.WithTimeout(ctx, 5*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, "go", args...)
	cmd.Dir = dir
	cmd.Env = e.Vars(extra...)
	out, err := cmd.CombinedOutput()
	return string(out), err
}

// MustGo is Go that fails the test on error.
func (e *Env) MustGo(t testing.TB, dir string, args ...string) string {
	t.Helper()
	out, err := e.Go(context.Background(), dir, nil, args...)
	if err != nil {
		t.Fatalf("go %s (in %s): %v\n%s", strings.Join(args, " "), dir, err, out)
	}
	return out
}

// GoEnv answers like goenv.Command, running `go env -json` in this
// environment.
func (e *Env) GoEnv(ctx context.Context, keys ...string) (map[string]string, error) {
	out, err := e.Go(ctx, e.Root, nil, append([]string{"env", "-json"}, keys...)...)
	if err != nil {
		return nil, fmt.Errorf("go env: %v: %s", err, out)
	}
	m := map[string]string{}
	if err := json.Unmarshal([]byte(out), &m); err != nil {
		return nil, fmt.Errorf("go env: %w", err)
	}
	return m, nil
}

// WriteFiles writes files (slash paths relative to dir) and returns dir.
func WriteFiles(t testing.TB, dir string, files map[string]string) string {
	t.Helper()
	return modrefstest.Write(t, dir, files)
}

// Mod returns a module whose files are given as name, content pairs.
func Mod(path, version string, files ...string) upstreamtest.Module {
	m := upstreamtest.Module{Path: path, Version: version, Files: map[string][]byte{}}
	for i := 0; i+1 < len(files); i += 2 {
		m.Files[files[i]] = []byte(files[i+1])
	}
	return m
}

// MakeWritable makes every directory below root owner-writable, as the
// go command's `go clean -modcache` does before removing.
func MakeWritable(root string) {
	_ = filepath.WalkDir(root, func(p string, d fs.DirEntry, err error) error {
		if err == nil && d.IsDir() {
			if info, err := d.Info(); err == nil {
				_ = os.Chmod(p, info.Mode().Perm()|0o700)
			}
		}
		return nil
	})
}

// FileState is what Snapshot records of one path.
type FileState struct {
	Mode    fs.FileMode
	Size    int64
	SHA256  string // regular files
	ModTime time.Time
}

func (s FileState) String() string {
	return fmt.Sprintf("%v %d %s %s", s.Mode, s.Size, s.SHA256, s.ModTime.Format(time.RFC3339Nano))
}

// Snapshot records every path below root (relative, slash-separated; root
// itself excluded) with its mode, size, content hash and modification time
// (for regular files).
func Snapshot(t testing.TB, root string) map[string]FileState {
	t.Helper()
	out := map[string]FileState{}
	err := filepath.WalkDir(root, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if p == root {
			return nil
		}
		info, err := d.Info()
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(root, p)
		st := FileState{Mode: info.Mode()}
		if info.Mode().IsRegular() {
			data, err := os.ReadFile(p)
			if err != nil {
				return err
			}
			sum := sha256.Sum256(data)
			st.Size, st.SHA256, st.ModTime = info.Size(), hex.EncodeToString(sum[:]), info.ModTime()
		}
		out[filepath.ToSlash(rel)] = st
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return out
}

// Diff describes the differences between two snapshots, one line each,
// sorted; "" when they are equal.
func Diff(before, after map[string]FileState) string {
	var lines []string
	for k, b := range before {
		a, ok := after[k]
		switch {
		case !ok:
			lines = append(lines, "- "+k)
		case a != b:
			lines = append(lines, fmt.Sprintf("~ %s: %v -> %v", k, b, a))
		}
	}
	for k := range after {
		if _, ok := before[k]; !ok {
			lines = append(lines, "+ "+k)
		}
	}
	sort.Strings(lines)
	return strings.Join(lines, "\n")
}
