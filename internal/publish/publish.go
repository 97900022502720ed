// Package publish is the client side of hosted modules (modproxy
// publish): it builds a module version's zip with golang.org/x/mod/zip,
// checks it, derives its .info and .mod, and uploads the three to a
// modproxy's publish API (see hosted.APIPrefix for the wire format).
//
// Where the zip comes from:
//   - In a git checkout (unless NoVCS), the version is a tag: the one
//     given (prefixed with the module's directory in the repository, as
//     the go command expects for a module in a subdirectory) or, without
//     Version, the highest semver tag at HEAD. The zip is made with
//     zip.CreateFromVCS from that tag, so it holds what is committed,
//     exactly the bytes (and h1 hash) the go command computes when it
//     fetches the tag from version control; uncommitted changes are not
//     published. The .info's Time is the tagged commit's time.
//   - Otherwise (no git checkout, or NoVCS) Version is required and the
//     zip is made with zip.CreateFromDir from the directory as it is; the
//     .info's Time is now.
//
// The .mod is the zip's go.mod (or "module PATH\n" when there is none),
// so the two are equal as the server demands. The zip is spooled to a
// temporary file and streamed to the server, never held in memory.
package publish

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"mime/multipart"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"time"

	"golang.org/x/mod/modfile"
	"golang.org/x/mod/module"
	"golang.org/x/mod/semver"
	modzip "golang.org/x/mod/zip"

	"github.com/modproxy/modproxy/internal/hosted"
)

// UsageError is an error in what the caller asked (a missing or invalid
// version, no module in the directory): the command line exits 2 for it.
type UsageError struct{ Msg string }

func (e *UsageError) Error() string { return e.Msg }

// Options says what to publish where.
type Options struct {
	// Proxy is the base URL of the proxy (the root, or a namespace's
	// https://HOST/NAME).
	Proxy string
	// Token is sent as a Bearer token: one with the publish scope, or the
	// admin token of a server without authentication.
	Token   string
	Version string // "" in a git checkout: the semver tag at HEAD
	Dir     string // the module's directory (holding go.mod)
	NoVCS   bool   // zip the directory as it is even in a git checkout
	Client  *http.Client
	Now     func() time.Time
}

// Result is what the server answered.
type Result struct {
	Module   string `json:"module"`
	Version  string `json:"version"`
	Created  bool   `json:"created"`
	H1       string `json:"h1"`
	GoModH1  string `json:"go_mod_h1"`
	LogIndex int64  `json:"log_index"`
	Source   string `json:"source"` // "git tag TAG" or "directory"
	Status   int    `json:"status"` // 201 published, 200 already published with the same bytes
}

// ServerError is a refusal of the server, with its status and message.
type ServerError struct {
	Status int
	Msg    string
}

func (e *ServerError) Error() string { return fmt.Sprintf("server answered %d: %s", e.Status, e.Msg) }

// Run builds, checks and uploads the version. See the package
// documentation.
func Run(ctx context.Context, o Options) (Result, error) {
	if o.Now == nil {
		o.Now = time.Now
	}
	if o.Client == nil {
		o.Client = http.DefaultClient
	}
	dir, err := filepath.Abs(o.Dir)
	if err != nil {
		return Result{}, err
	}
	gomod, err := os.ReadFile(filepath.Join(dir, "go.mod"))
	if err != nil {
		return Result{}, &UsageError{Msg: fmt.Sprintf("%s holds no go.mod: %v", dir, err)}
	}
	path := modfile.ModulePath(gomod)
	if path == "" {
		return Result{}, &UsageError{Msg: fmt.Sprintf("%s/go.mod declares no module path", dir)}
	}
	src, err := source(ctx, dir, o)
	if err != nil {
		return Result{}, err
	}
	mv := module.Version{Path: path, Version: src.version}
	if err := module.Check(path, src.version); err != nil {
		return Result{}, &UsageError{Msg: err.Error()}
	}
	if module.CanonicalVersion(src.version) != src.version || module.IsPseudoVersion(src.version) {
		return Result{}, &UsageError{Msg: fmt.Sprintf("version %q is not a canonical release or pre-release version (vMAJOR.MINOR.PATCH[-PRE])", src.version)}
	}
	f, err := os.CreateTemp("", "modproxy-publish-*.zip")
	if err != nil {
		return Result{}, err
	}
	defer os.Remove(f.Name())
	defer f.Close()
	if src.tag != "" {
		err = modzip.CreateFromVCS(f, mv, src.repoRoot, src.tag, src.subdir)
	} else {
		err = modzip.CreateFromDir(f, mv, dir)
	}
	if err != nil {
		return Result{}, fmt.Errorf("building the module zip: %w", err)
	}
	if err := f.Sync(); err != nil {
		return Result{}, err
	}
	if _, err := modzip.CheckZip(mv, f.Name()); err != nil {
		return Result{}, fmt.Errorf("checking the module zip: %w", err)
	}
	mod, err := hosted.ZipGoMod(mv, f.Name())
	if err != nil {
		return Result{}, fmt.Errorf("reading the zip's go.mod: %w", err)
	}
	if mod == nil {
		mod = []byte("module " + modfile.AutoQuote(path) + "\n")
	}
	info, err := json.Marshal(struct {
		Version string
		Time    time.Time
	}{src.version, src.time.UTC()})
	if err != nil {
		return Result{}, err
	}
	res, err := upload(ctx, o, mv, info, mod, f)
	res.Source = src.describe()
	return res, err
}

// origin is where the zip comes from.
type origin struct {
	version  string
	time     time.Time
	repoRoot string // for a git tag
	subdir   string
	tag      string // "" : the directory
}

func (s origin) describe() string {
	if s.tag != "" {
		return "git tag " + s.tag
	}
	return "directory"
}

// source decides where the zip comes from (see the package documentation).
func source(ctx context.Context, dir string, o Options) (origin, error) {
	root, err := git(ctx, dir, "rev-parse", "--show-toplevel")
	if o.NoVCS || err != nil {
		if o.Version == "" {
			return origin{}, &UsageError{Msg: "--version is required to publish a directory that is not a git checkout at a version tag"}
		}
		return origin{version: o.Version, time: o.Now()}, nil
	}
	root, err = filepath.EvalSymlinks(root)
	if err != nil {
		return origin{}, err
	}
	real, err := filepath.EvalSymlinks(dir)
	if err != nil {
		return origin{}, err
	}
	subdir, err := filepath.Rel(root, real)
	if err != nil {
		return origin{}, err
	}
	prefix := ""
	if subdir = filepath.ToSlash(subdir); subdir == "." {
		subdir = ""
	} else {
		prefix = subdir + "/"
	}
	version := o.Version
	if version == "" {
		tags, err := git(ctx, dir, "tag", "--points-at", "HEAD")
		if err != nil {
			return origin{}, err
		}
		for t := range strings.FieldsSeq(tags) {
			v, ok := strings.CutPrefix(t, prefix)
			if ok && semver.IsValid(v) && module.CanonicalVersion(v) == v && (version == "" || semver.Compare(v, version) > 0) {
				version = v
			}
		}
		if version == "" {
			return origin{}, &UsageError{Msg: fmt.Sprintf("HEAD of %s carries no version tag (%svX.Y.Z): tag it, or give --version", root, prefix)}
		}
	}
	tag := prefix + version
	if _, err := git(ctx, dir, "rev-parse", "--verify", "--quiet", "refs/tags/"+tag+"^{commit}"); err != nil {
		return origin{}, &UsageError{Msg: fmt.Sprintf("no tag %s in %s: tag the commit to publish (git tag %s), or use --no-vcs to publish the directory as it is", tag, root, tag)}
	}
	ct, err := git(ctx, dir, "log", "-1", "--format=%cI", "refs/tags/"+tag)
	if err != nil {
		return origin{}, err
	}
	t, err := time.Parse(time.RFC3339, strings.TrimSpace(ct))
	if err != nil {
		return origin{}, fmt.Errorf("commit time of %s: %w", tag, err)
	}
	return origin{version: version, time: t, repoRoot: root, subdir: subdir, tag: tag}, nil
}

// git runs git in dir and returns its trimmed output.
func git(ctx context.Context, dir string, args ...string) (string, error) {
	cmd := exec.CommandContext(ctx, "git", append([]string{"-C", dir}, args...)...)
	cmd.Env = append(os.Environ(), "GIT_TERMINAL_PROMPT=0")
	out, err := cmd.Output()
	if err != nil {
		var ee *exec.ExitError
		if errors.As(err, &ee) {
			return "", fmt.Errorf("git %s: %w: %s", strings.Join(args, " "), err, strings.TrimSpace(string(ee.Stderr)))
		}
		return "", fmt.Errorf("git %s: %w", strings.Join(args, " "), err)
	}
	return strings.TrimSpace(string(out)), nil
}

// upload streams the three parts to the server. The writer goroutine is
// joined before upload returns.
func upload(ctx context.Context, o Options, mv module.Version, info, mod []byte, zipFile *os.File) (Result, error) {
	ep, err := module.EscapePath(mv.Path)
	if err != nil {
		return Result{}, err
	}
	ev, err := module.EscapeVersion(mv.Version)
	if err != nil {
		return Result{}, err
	}
	if _, err := zipFile.Seek(0, io.SeekStart); err != nil {
		return Result{}, err
	}
	pr, pw := io.Pipe()
	mw := multipart.NewWriter(pw)
	done := make(chan error, 1)
	go func() {
		err := writeParts(mw, info, mod, zipFile)
		pw.CloseWithError(err)
		done <- err
	}()
	u := strings.TrimSuffix(o.Proxy, "/") + hosted.APIPrefix + ep + "/@v/" + ev
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, u, pr)
	if err != nil {
		pr.CloseWithError(err)
		<-done
		return Result{}, err
	}
	req.Header.Set("Content-Type", mw.FormDataContentType())
	if o.Token != "" {
		req.Header.Set("Authorization", "Bearer "+o.Token)
	}
	resp, err := o.Client.Do(req)
	pr.CloseWithError(errors.New("request finished")) // unblocks the writer if the server stopped reading
	werr := <-done
	if err != nil {
		return Result{}, fmt.Errorf("uploading to %s: %w", o.Proxy, err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
	if err != nil {
		return Result{}, fmt.Errorf("reading the answer of %s: %w", o.Proxy, err)
	}
	if resp.StatusCode != http.StatusOK && resp.StatusCode != http.StatusCreated {
		return Result{}, &ServerError{Status: resp.StatusCode, Msg: strings.TrimSpace(string(body))}
	}
	if werr != nil {
		return Result{}, fmt.Errorf("sending the upload: %w", werr)
	}
	var res Result
	if err := json.Unmarshal(body, &res); err != nil {
		return Result{}, fmt.Errorf("the answer of %s: %w", o.Proxy, err)
	}
	res.Status = resp.StatusCode
	return res, nil
}

func writeParts(mw *multipart.Writer, info, mod []byte, zipFile io.Reader) error {
	for _, p := range []struct {
		name string
		r    io.Reader
	}{{hosted.PartInfo, strings.NewReader(string(info))}, {hosted.PartMod, strings.NewReader(string(mod))}, {hosted.PartZip, zipFile}} {
		w, err := mw.CreateFormFile(p.name, p.name)
		if err != nil {
			return err
		}
		if _, err := io.Copy(w, p.r); err != nil {
			return err
		}
	}
	return mw.Close()
}
