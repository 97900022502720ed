// Package githook is the logic of `modproxy hook post-receive`: it reads
// the ref updates git gives a post-receive hook, finds the module path of
// every pushed version tag, and asks the proxy to refresh it, so that the
// new version is listed at once rather than when the cached list expires.
//
// A tag "vX.Y.Z" names the module whose go.mod is at the repository's
// root (or, for major version N >= 2, in the "vN" subdirectory, which the
// go command also accepts); a tag "DIR/vX.Y.Z" names the module in DIR
// (or DIR/vN). The module path is read from that go.mod at the pushed
// commit (git show NEW:PATH). A deleted tag is read at its old commit.
// Other refs are ignored.
//
// Nothing here fails the push: PostReceive reports what it could not do
// as warnings, and the command exits 0.
package githook

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"os/exec"
	"path"
	"strings"

	"golang.org/x/mod/semver"

	"github.com/modproxy/modproxy/internal/modrefs"
)

// Update is one line of a post-receive hook's standard input.
type Update struct {
	Old, New, Ref string
}

// zeroID: git's all-zero object name (40 or, for SHA-256 repositories,
// 64 digits) means "no object" (a created or deleted ref).
func zeroID(id string) bool {
	return strings.Trim(id, "0") == ""
}

// ParseUpdates reads "OLD NEW REF" lines; malformed lines are skipped.
func ParseUpdates(r io.Reader) ([]Update, error) {
	var out []Update
	sc := bufio.NewScanner(r)
	for sc.Scan() {
		f := strings.Fields(sc.Text())
		if len(f) != 3 {
			continue
		}
		out = append(out, Update{Old: f[0], New: f[1], Ref: f[2]})
	}
	return out, sc.Err()
}

// Tag splits a version tag ref "refs/tags/[DIR/]vX.Y.Z" into the module's
// directory in the repository ("" the root) and the version; ok is false
// for other refs.
func Tag(ref string) (dir, version string, ok bool) {
	name, ok := strings.CutPrefix(ref, "refs/tags/")
	if !ok {
		return "", "", false
	}
	dir, version = path.Split(name)
	if !semver.IsValid(version) || semver.Canonical(version) != version { // the go command's rule for version tags
		return "", "", false
	}
	return strings.TrimSuffix(dir, "/"), version, true
}

// goModPaths are where the go.mod of the module tagged dir/version may
// be, in the order the go command prefers.
func goModPaths(dir, version string) []string {
	var out []string
	if m := semver.Major(version); m != "v0" && m != "v1" {
		out = append(out, path.Join(dir, m, "go.mod"))
	}
	return append(out, path.Join(dir, "go.mod"))
}

// Options are what PostReceive needs.
type Options struct {
	// Show returns the content of "REV:PATH" (git show), or an error when
	// it does not exist.
	Show func(ctx context.Context, rev, path string) ([]byte, error)
	// Refresh asks the proxy to refresh the module path.
	Refresh func(ctx context.Context, module string) error
	// Warn and Info receive one line each (without newline).
	Warn, Info func(msg string)
}

// PostReceive refreshes the module of every version tag in updates, each
// module once, and returns the module paths refreshed. What it cannot do
// (a tag without go.mod, a proxy that does not answer) is a warning.
func PostReceive(ctx context.Context, updates []Update, o Options) []string {
	var done []string
	seen := map[string]bool{}
	for _, u := range updates {
		dir, version, ok := Tag(u.Ref)
		if !ok {
			continue
		}
		rev := u.New
		if zeroID(rev) {
			rev = u.Old // a deleted tag: its module's list changes too
		}
		mod, err := modulePath(ctx, o.Show, rev, dir, version)
		if err != nil {
			o.Warn(fmt.Sprintf("%s: %v", u.Ref, err))
			continue
		}
		if seen[mod] {
			continue
		}
		seen[mod] = true
		if err := o.Refresh(ctx, mod); err != nil {
			o.Warn(fmt.Sprintf("%s: could not refresh %s: %v", u.Ref, mod, err))
			continue
		}
		o.Info(fmt.Sprintf("refreshed %s (%s)", mod, version))
		done = append(done, mod)
	}
	return done
}

// modulePath reads the module path of the tagged module at rev.
func modulePath(ctx context.Context, show func(context.Context, string, string) ([]byte, error), rev, dir, version string) (string, error) {
	var firstErr error
	for _, p := range goModPaths(dir, version) {
		data, err := show(ctx, rev, p)
		if err != nil {
			if firstErr == nil {
				firstErr = fmt.Errorf("no go.mod: %w", err)
			}
			continue
		}
		mod, err := modrefs.ModulePath(data)
		if err != nil {
			return "", fmt.Errorf("%s: %w", p, err)
		}
		return mod, nil
	}
	return "", firstErr
}

// Git runs git with args in the hook's repository (the working directory
// and GIT_DIR git gives hooks) and returns its standard output.
func Git(ctx context.Context, args ...string) ([]byte, error) {
	var stderr strings.Builder
	cmd := exec.CommandContext(ctx, "git", args...)
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		if msg := strings.TrimSpace(stderr.String()); msg != "" {
			return nil, fmt.Errorf("git %s: %w: %s", strings.Join(args, " "), err, msg)
		}
		return nil, fmt.Errorf("git %s: %w", strings.Join(args, " "), err)
	}
	return out, nil
}

// GitShow is an Options.Show on git show REV:PATH.
func GitShow(ctx context.Context, rev, path string) ([]byte, error) {
	return Git(ctx, "show", rev+":"+path)
}

// GitConfig returns the value of a git configuration key ("" when unset).
func GitConfig(ctx context.Context, key string) string {
	out, err := Git(ctx, "config", "--get", key)
	if err != nil {
		return ""
	}
	return strings.TrimSpace(string(out))
}
