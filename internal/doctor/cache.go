package doctor

import (
	"github.com/modproxy/modproxy/internal/units"

	"bytes"
	"context"
	"crypto/sha256"
	"encoding/base64"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path"
	"path/filepath"
	"strings"
)

// maxExamples bounds the paths listed in one finding.
const maxExamples = 5

// cacheScan is what a walk of GOMODCACHE found.
type cacheScan struct {
	Bytes      int64
	Files      int
	Zips       int
	Trees      int
	Partial    []string // .partial markers of interrupted extractions (relative paths)
	Tmp        []string // leftover temporary files and extraction directories
	TmpBytes   int64
	BadZiphash []badZiphash
	NoZiphash  []string // extracted trees without their .ziphash
	WalkErrors int
	FirstErr   error
}

type badZiphash struct {
	Path  string // relative
	Why   string
	Heals bool // the go command recomputes it from the zip
}

// scanCache walks the module cache once. Only cache/download is searched
// for leftovers: extracted module trees may legitimately contain files
// named *.tmp.
func scanCache(ctx context.Context, dir string) cacheScan {
	var s cacheScan
	tree := "" // the extracted tree being walked, relative
	_ = filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		if ctx.Err() != nil {
			return ctx.Err()
		}
		if err != nil {
			s.WalkErrors++
			if s.FirstErr == nil {
				s.FirstErr = err
			}
			if d != nil && d.IsDir() && p != dir {
				return fs.SkipDir
			}
			return nil
		}
		rel, _ := filepath.Rel(dir, p)
		rel = filepath.ToSlash(rel)
		if tree != "" && !strings.HasPrefix(rel, tree+"/") {
			tree = ""
		}
		if d.IsDir() {
			if tree == "" && rel != "." && !strings.HasPrefix(rel, "cache/") && rel != "cache" && strings.Contains(path.Base(rel), "@") {
				tree = rel
				if isExtractTemp(path.Base(rel)) {
					s.Tmp = append(s.Tmp, rel+"/")
				} else {
					s.Trees++
					s.checkTree(dir, rel)
				}
			}
			return nil
		}
		info, err := d.Info()
		if err != nil {
			return nil
		}
		s.Files++
		s.Bytes += info.Size()
		if tree != "" && isExtractTemp(path.Base(tree)) {
			s.TmpBytes += info.Size()
		}
		if !strings.HasPrefix(rel, "cache/download/") || strings.HasPrefix(rel, "cache/download/sumdb/") {
			return nil
		}
		switch name := d.Name(); {
		case strings.HasSuffix(name, ".partial"):
			s.Partial = append(s.Partial, rel)
		case strings.HasSuffix(name, ".tmp"):
			s.Tmp = append(s.Tmp, rel)
			s.TmpBytes += info.Size()
		case strings.HasSuffix(name, ".zip"):
			s.Zips++
		case strings.HasSuffix(name, ".ziphash"):
			if why, heals := checkZiphashFile(p); why != "" {
				s.BadZiphash = append(s.BadZiphash, badZiphash{Path: rel, Why: why, Heals: heals})
			}
		}
		return nil
	})
	return s
}

// isExtractTemp reports whether an @-named directory is a temporary
// extraction directory of the go command ("path@v1.2.3.tmp-123456").
func isExtractTemp(base string) bool {
	_, after, ok := strings.Cut(base, ".tmp-")
	return ok && after != "" && strings.Trim(after, "0123456789") == ""
}

// checkTree records a tree without its .ziphash, which the go command
// treats as incompletely extracted.
func (s *cacheScan) checkTree(dir, rel string) {
	i := strings.LastIndex(rel, "@")
	escPath, escVer := rel[:i], rel[i+1:]
	if escPath == "golang.org/fips140" { // unpacked from GOROOT, never has one
		return
	}
	base := filepath.Join(dir, "cache", "download", filepath.FromSlash(escPath), "@v", escVer)
	if _, err := os.Stat(base + ".partial"); err == nil {
		return // reported as .partial
	}
	if _, err := os.Stat(base + ".ziphash"); errors.Is(err, fs.ErrNotExist) {
		s.NoZiphash = append(s.NoZiphash, rel)
	}
}

// checkZiphash validates the content of a .ziphash file as the go
// command reads it: "h1:" and the base64 of a SHA-256 sum, white space
// around it ignored. It returns why it is invalid ("" when valid).
func checkZiphash(data []byte) string {
	data = bytes.TrimSpace(data)
	switch {
	case len(data) == 0:
		return "empty"
	case bytes.IndexByte(data, 0) >= 0:
		return "contains NUL bytes"
	case !bytes.HasPrefix(data, []byte("h1:")):
		return fmt.Sprintf("does not start with h1: (%q)", truncate(string(data), 20))
	}
	sum, err := base64.StdEncoding.DecodeString(string(data[3:]))
	switch {
	case err != nil:
		return "not valid base64 after h1:"
	case len(sum) != sha256.Size:
		return fmt.Sprintf("hash of %d bytes, want %d", len(sum), sha256.Size)
	}
	return ""
}

// checkZiphashFile checks one .ziphash file; heals reports whether the go
// command throws such a file away and rehashes the zip beside it (it does
// when the length is wrong or the file has NUL bytes, and the zip exists).
func checkZiphashFile(p string) (why string, heals bool) {
	data, err := os.ReadFile(p)
	if err != nil {
		return "unreadable: " + err.Error(), false
	}
	why = checkZiphash(data)
	if why == "" {
		return "", false
	}
	t := bytes.TrimSpace(data)
	if bytes.IndexByte(t, 0) >= 0 || len(t) != len("h1:")+base64.StdEncoding.EncodedLen(sha256.Size) {
		if _, err := os.Stat(strings.TrimSuffix(p, "hash")); err == nil {
			heals = true
		}
	}
	return why, heals
}

func truncate(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return s[:n] + "..."
}

func examples(list []string) string {
	if len(list) <= maxExamples {
		return strings.Join(list, "\n")
	}
	return strings.Join(list[:maxExamples], "\n") + fmt.Sprintf("\n... and %d more", len(list)-maxExamples)
}

// writable reports whether a file can be created in dir, by creating and
// removing one.
func writable(dir string) error {
	f, err := os.CreateTemp(dir, ".modproxy-doctor-*")
	if err != nil {
		return err
	}
	name := f.Name()
	f.Close()
	return os.Remove(name)
}

// existingAncestor returns dir or its nearest existing parent.
func existingAncestor(dir string) string {
	for {
		if _, err := os.Stat(dir); err == nil {
			return dir
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			return dir
		}
		dir = parent
	}
}

func (c *checker) checkCache(ctx context.Context) {
	dir := c.env["GOMODCACHE"]
	if dir == "" {
		c.add(IDCache, Warning, "module cache", "go env GOMODCACHE is empty", "set GOPATH or GOMODCACHE")
		return
	}
	title := "module cache " + dir
	st, err := os.Stat(dir)
	switch {
	case errors.Is(err, fs.ErrNotExist):
		anc := existingAncestor(dir)
		c.add(IDCache, OK, title, "does not exist yet: created by the first download", "")
		if err := writable(anc); err != nil {
			c.add(IDCacheWritable, Problem, title, "cannot be created: "+anc+" is not writable ("+errText(err)+")",
				"make "+anc+" writable, or go env -w GOMODCACHE=A/WRITABLE/DIR")
		}
		return
	case err != nil:
		c.add(IDCache, Problem, title, "cannot be read: "+errText(err), "fix the permissions, or go env -w GOMODCACHE=A/WRITABLE/DIR")
		return
	case !st.IsDir():
		c.add(IDCache, Problem, title, "is not a directory: every download fails", "remove it or go env -w GOMODCACHE=A/DIRECTORY")
		return
	}

	s := scanCache(ctx, dir)
	seen := fmt.Sprintf("%s in %d files: %d module zips, %d extracted trees", units.Bytes(s.Bytes), s.Files, s.Zips, s.Trees)
	if s.WalkErrors > 0 {
		c.add(IDCache, Warning, title, seen+fmt.Sprintf("; %d paths could not be read (first: %s)", s.WalkErrors, errText(s.FirstErr)),
			"the go command may fail on them with \"permission denied\": fix ownership (chown -R $USER "+dir+")")
	} else {
		c.add(IDCache, OK, title, seen, "")
	}

	target := filepath.Join(dir, "cache", "download")
	if _, err := os.Stat(target); err != nil {
		target = dir
	}
	if err := writable(target); err != nil {
		c.add(IDCacheWritable, Problem, title, target+" is not writable ("+errText(err)+"): every download fails with \"permission denied\"",
			"fix the ownership (e.g. sudo chown -R $USER "+dir+"), or go env -w GOMODCACHE=A/WRITABLE/DIR; extracted trees are read-only on purpose, only the directories must be writable")
	} else {
		c.add(IDCacheWritable, OK, title, target+" is writable (extracted module trees are read-only on purpose)", "")
	}

	if len(s.Partial) > 0 {
		c.add(IDCachePartial, Warning, title,
			fmt.Sprintf("%d .partial marker%s of interrupted extractions:\n%s\nthe go command re-extracts those versions from their zips (which fails offline if the zip is gone)", len(s.Partial), plural(len(s.Partial), "", "s"), examples(s.Partial)),
			"harmless when no go command is running; to start over for a version: modproxy clean --module PATH@VERSION")
	}
	if len(s.Tmp) > 0 {
		c.add(IDCacheTmp, Warning, title,
			fmt.Sprintf("%d leftover temporary file%s or director%s (%s) from interrupted downloads:\n%s", len(s.Tmp), plural(len(s.Tmp), "", "s"), plural(len(s.Tmp), "y", "ies"), units.Bytes(s.TmpBytes), examples(s.Tmp)),
			"safe to delete when no go command is running; the go command removes them the next time it downloads the same version")
	}
	if len(s.Partial) == 0 && len(s.Tmp) == 0 {
		c.add(IDCacheTmp, OK, title, "no leftover .partial or temporary files", "")
	}
	if len(s.BadZiphash) > 0 {
		st := Warning
		var list []string
		for _, b := range s.BadZiphash {
			if !b.Heals {
				st = Problem
			}
			line := b.Path + ": " + b.Why
			if b.Heals {
				line += " (recomputed from the zip)"
			}
			list = append(list, line)
		}
		c.add(IDCacheZiphash, st, title,
			fmt.Sprintf("%d invalid .ziphash file%s (want h1: and the base64 of 32 bytes):\n%s\nthe go command fails on them (\"unexpected ziphash\" or a checksum mismatch) unless it can recompute them", len(list), plural(len(list), "", "s"), examples(list)),
			"remove those versions: modproxy clean --module PATH@VERSION (or go clean -modcache)")
	} else if s.Zips > 0 {
		c.add(IDCacheZiphash, OK, title, "every .ziphash file is well-formed", "")
	}
	if len(s.NoZiphash) > 0 {
		c.add(IDCacheNoZiphash, Warning, title,
			fmt.Sprintf("%d extracted tree%s without a .ziphash:\n%s\nthe go command treats them as incompletely extracted and extracts them again, which needs the zip (or the network)", len(s.NoZiphash), plural(len(s.NoZiphash), "", "s"), examples(s.NoZiphash)),
			"remove those versions so they are downloaded cleanly: modproxy clean --module PATH@VERSION (or go clean -modcache)")
	}
}

func errText(err error) string {
	var pe *fs.PathError
	if errors.As(err, &pe) {
		return pe.Err.Error()
	}
	return err.Error()
}
