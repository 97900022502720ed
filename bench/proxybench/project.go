package main

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"hash/crc32"
	"io"
	iofs "io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"strings"

	"golang.org/x/mod/module"
)

// artifact is one protocol file of the project, as the go command asks a
// proxy for it.
type artifact struct {
	Path string `json:"path"` // escaped protocol path, e.g. "github.com/!burnt!sushi/toml/@v/v1.6.0.zip"
	Kind string `json:"kind"` // "info", "mod" or "zip"
	Size int64  `json:"size"` // bytes, from the local upstream
	CRC  uint32 `json:"-"`    // CRC-32 (IEEE) of the upstream bytes
}

// parseGoSum derives the protocol artifacts from go.sum: each
// "PATH VERSION/go.mod h1:..." line gives PATH/@v/VERSION.mod, each
// "PATH VERSION h1:..." line gives .info and .zip. Paths and versions are
// escaped with golang.org/x/mod/module. The order is the file's; duplicates
// are dropped.
func parseGoSum(data []byte) ([]artifact, error) {
	seen := map[string]bool{}
	var arts []artifact
	for i, line := range strings.Split(string(data), "\n") {
		f := strings.Fields(line)
		if len(f) == 0 {
			continue
		}
		if len(f) != 3 || !strings.HasPrefix(f[2], "h1:") {
			return nil, fmt.Errorf("go.sum line %d: want \"PATH VERSION h1:HASH\", have %q", i+1, line)
		}
		mod, ver, kinds := f[0], f[1], []string{"info", "zip"}
		if v, ok := strings.CutSuffix(ver, "/go.mod"); ok {
			ver, kinds = v, []string{"mod"}
		}
		if err := module.Check(mod, ver); err != nil {
			return nil, fmt.Errorf("go.sum line %d: %v", i+1, err)
		}
		ep, err := module.EscapePath(mod)
		if err != nil {
			return nil, fmt.Errorf("go.sum line %d: %v", i+1, err)
		}
		ev, err := module.EscapeVersion(ver)
		if err != nil {
			return nil, fmt.Errorf("go.sum line %d: %v", i+1, err)
		}
		for _, k := range kinds {
			p := ep + "/@v/" + ev + "." + k
			if !seen[p] {
				seen[p] = true
				arts = append(arts, artifact{Path: p, Kind: k})
			}
		}
	}
	return arts, nil
}

// prepareUpstream makes sure cache/gomodcache holds what "go mod download"
// fetches for the project and returns its cache/download directory, a
// GOPROXY tree. The download runs once: a stamp file with the hash of
// go.mod and go.sum marks a complete download that later runs reuse.
func prepareUpstream(ctx context.Context, project, cache string) (string, error) {
	gomodcache := filepath.Join(cache, "gomodcache")
	dl := filepath.Join(gomodcache, "cache", "download")
	stamp := filepath.Join(cache, "download.stamp")
	h := sha256.New()
	for _, name := range []string{"go.mod", "go.sum"} {
		b, err := os.ReadFile(filepath.Join(project, name))
		if err != nil {
			return "", err
		}
		h.Write(b)
	}
	want := hex.EncodeToString(h.Sum(nil))
	if b, err := os.ReadFile(stamp); err == nil && strings.TrimSpace(string(b)) == want {
		logf("upstream: reusing %s", dl)
		return dl, nil
	}
	tmp, err := os.MkdirTemp("", "proxybench-project-")
	if err != nil {
		return "", err
	}
	defer os.RemoveAll(tmp)
	if err := copyTree(project, tmp, 0o644, 0o755); err != nil {
		return "", err
	}
	goflags, err := goEnv(ctx, "GOFLAGS")
	if err != nil {
		return "", err
	}
	logf("upstream: go mod download of %s into %s", project, gomodcache)
	cmd := exec.CommandContext(ctx, "go", "mod", "download")
	cmd.Dir = tmp
	cmd.Env = append(os.Environ(),
		"GOMODCACHE="+gomodcache,
		"GOFLAGS="+strings.TrimSpace(goflags+" -modcacherw"),
		"GOWORK=off",
	)
	cmd.Stdout, cmd.Stderr = os.Stderr, os.Stderr
	if err := cmd.Run(); err != nil {
		return "", fmt.Errorf("go mod download: %w", err)
	}
	// Only cache/download is served; drop the extracted module trees.
	ents, err := os.ReadDir(gomodcache)
	if err != nil {
		return "", err
	}
	for _, e := range ents {
		if e.Name() != "cache" {
			if err := os.RemoveAll(filepath.Join(gomodcache, e.Name())); err != nil {
				return "", err
			}
		}
	}
	if err := os.WriteFile(stamp, []byte(want+"\n"), 0o644); err != nil {
		return "", err
	}
	return dl, nil
}

// resolveArtifacts fills Size and CRC of each artifact from the upstream
// tree and splits the list into those present and those missing.
func resolveArtifacts(arts []artifact, root string) (present, missing []artifact, err error) {
	for _, a := range arts {
		f, err := os.Open(filepath.Join(root, filepath.FromSlash(a.Path)))
		if err != nil {
			if os.IsNotExist(err) {
				missing = append(missing, a)
				continue
			}
			return nil, nil, err
		}
		c := crc32.NewIEEE()
		n, err := io.Copy(c, f)
		f.Close()
		if err != nil {
			return nil, nil, err
		}
		a.Size, a.CRC = n, c.Sum32()
		present = append(present, a)
	}
	return present, missing, nil
}

func goEnv(ctx context.Context, name string) (string, error) {
	out, err := exec.CommandContext(ctx, "go", "env", name).Output()
	if err != nil {
		return "", fmt.Errorf("go env %s: %w", name, err)
	}
	return strings.TrimSpace(string(out)), nil
}

// copyTree copies the regular files and directories under src to dst
// (which exists), with the given permissions.
func copyTree(src, dst string, fileMode, dirMode os.FileMode) error {
	return filepath.WalkDir(src, func(p string, d iofs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel, err := filepath.Rel(src, p)
		if err != nil {
			return err
		}
		target := filepath.Join(dst, rel)
		switch {
		case d.IsDir():
			return os.MkdirAll(target, dirMode)
		case d.Type().IsRegular():
			return copyFile(p, target, fileMode)
		}
		return nil
	})
}

func copyFile(src, dst string, mode os.FileMode) error {
	in, err := os.Open(src)
	if err != nil {
		return err
	}
	defer in.Close()
	out, err := os.OpenFile(dst, os.O_WRONLY|os.O_CREATE|os.O_TRUNC, mode)
	if err != nil {
		return err
	}
	if _, err := io.Copy(out, in); err != nil {
		out.Close()
		return err
	}
	return out.Close()
}
