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
	"time"

	"golang.org/x/mod/module"
	"golang.org/x/mod/sumdb/dirhash"
)

// maxExamples bounds the paths listed in one finding.
const maxExamples = 5

// Re-hashing extracted trees (go mod verify's check): only trees that look
// touched are re-hashed by the cache scan, at most maxRehashBytes of them.
// The go command extracts files read-only and within moments, so a
// writable file, or modification times further apart than extractSpread,
// mark a tree as touched.
const (
	maxRehashBytes = 256 << 20
	extractSpread  = time.Minute
)

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

	suspects  []treeStat            // trees that look touched, in walk order
	Hashed    map[string]editResult // re-hashed trees by relative path
	Edited    []string              // re-hashed trees that differ from their .ziphash
	Unhashed  []string              // trees that look touched but were not re-hashed (budget)
	HashError []string              // trees that could not be re-hashed
}

// treeStat is what the walk saw of one extracted tree.
type treeStat struct {
	rel            string
	oldest, newest time.Time
	writable       string // a writable file in it, relative to the tree
	bytes          int64
}

func (t *treeStat) see(info fs.FileInfo, name string) {
	if m := info.ModTime(); t.oldest.IsZero() || m.Before(t.oldest) {
		t.oldest = m
	}
	if m := info.ModTime(); m.After(t.newest) {
		t.newest = m
	}
	if info.Mode().IsRegular() {
		t.bytes += info.Size()
		if info.Mode().Perm()&0o222 != 0 && t.writable == "" {
			t.writable = name
		}
	}
}

// touched says why the tree looks edited since extraction, or "".
func (t *treeStat) touched() string {
	switch {
	case t.writable != "":
		return "writable file " + t.writable
	case t.newest.Sub(t.oldest) > extractSpread:
		return fmt.Sprintf("files changed %s after extraction", t.newest.Sub(t.oldest).Round(time.Second))
	}
	return ""
}

// editResult is the outcome of re-hashing one extracted tree.
type editResult struct {
	Want, Got string // .ziphash and the tree's hash
	Why       string // why it was re-hashed
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
	var cur *treeStat
	endTree := func() {
		if cur != nil && cur.touched() != "" {
			s.suspects = append(s.suspects, *cur)
		}
		cur = nil
	}
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
			endTree()
		}
		if d.IsDir() {
			if tree == "" && rel != "." && !strings.HasPrefix(rel, "cache/") && rel != "cache" && strings.Contains(path.Base(rel), "@") {
				tree = rel
				if isExtractTemp(path.Base(rel)) {
					s.Tmp = append(s.Tmp, rel+"/")
				} else {
					s.Trees++
					if s.checkTree(dir, rel) {
						cur = &treeStat{rel: rel}
					}
				}
			}
			if info, err := d.Info(); err == nil && cur != nil && tree != "" {
				cur.see(info, strings.TrimPrefix(rel, tree+"/"))
			}
			return nil
		}
		info, err := d.Info()
		if err != nil {
			return nil
		}
		if cur != nil && tree != "" {
			cur.see(info, strings.TrimPrefix(rel, tree+"/"))
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
	endTree()
	s.rehash(ctx, dir)
	return s
}

// rehash re-hashes the trees that look touched, as go mod verify does,
// within maxRehashBytes.
func (s *cacheScan) rehash(ctx context.Context, dir string) {
	budget := int64(maxRehashBytes)
	for _, t := range s.suspects {
		if ctx.Err() != nil {
			return
		}
		if t.bytes > budget {
			s.Unhashed = append(s.Unhashed, t.rel)
			continue
		}
		budget -= t.bytes
		r, ok, err := hashTree(dir, t.rel)
		switch {
		case err != nil:
			s.HashError = append(s.HashError, t.rel+": "+errText(err))
		case ok:
			r.Why = t.touched()
			if s.Hashed == nil {
				s.Hashed = map[string]editResult{}
			}
			s.Hashed[t.rel] = r
			if r.Got != r.Want {
				s.Edited = append(s.Edited, t.rel)
			}
		}
	}
}

// hashTree hashes the extracted tree rel (ESCPATH@ESCVERSION) of the module
// cache dir as go mod verify does and compares it with its .ziphash. ok is
// false when there is nothing to compare with (no valid .ziphash).
func hashTree(dir, rel string) (r editResult, ok bool, err error) {
	i := strings.LastIndex(rel, "@")
	if i < 0 {
		return r, false, nil
	}
	p, perr := module.UnescapePath(rel[:i])
	v, verr := module.UnescapeVersion(rel[i+1:])
	if perr != nil || verr != nil {
		return r, false, nil
	}
	zh, err := os.ReadFile(filepath.Join(dir, "cache", "download", filepath.FromSlash(rel[:i]), "@v", rel[i+1:]+".ziphash"))
	if err != nil || checkZiphash(zh) != "" {
		return r, false, nil
	}
	got, err := dirhash.HashDir(filepath.Join(dir, filepath.FromSlash(rel)), p+"@"+v, dirhash.Hash1)
	if err != nil {
		return r, false, err
	}
	return editResult{Want: strings.TrimSpace(string(zh)), Got: got}, true, nil
}

// isExtractTemp reports whether an @-named directory is a temporary
// extraction directory of the go command ("path@v1.2.3.tmp-123456").
func isExtractTemp(base string) bool {
	_, after, ok := strings.Cut(base, ".tmp-")
	return ok && after != "" && strings.Trim(after, "0123456789") == ""
}

// checkTree records a tree without its .ziphash, which the go command
// treats as incompletely extracted. It reports whether the tree is complete
// and has a .ziphash, so that it can be re-hashed.
func (s *cacheScan) checkTree(dir, rel string) bool {
	i := strings.LastIndex(rel, "@")
	escPath, escVer := rel[:i], rel[i+1:]
	if escPath == "golang.org/fips140" { // unpacked from GOROOT, never has one
		return false
	}
	base := filepath.Join(dir, "cache", "download", filepath.FromSlash(escPath), "@v", escVer)
	if _, err := os.Stat(base + ".partial"); err == nil {
		return false // reported as .partial
	}
	if _, err := os.Stat(base + ".ziphash"); errors.Is(err, fs.ErrNotExist) {
		s.NoZiphash = append(s.NoZiphash, rel)
		return false
	} else if err != nil {
		return false
	}
	return true
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

func examples(list []string) string { return upTo(list, maxExamples) }

// upTo joins up to n lines of list, saying how many more there are.
func upTo(list []string, n int) string {
	if len(list) <= n {
		return strings.Join(list, "\n")
	}
	return strings.Join(list[:n], "\n") + fmt.Sprintf("\n... and %d more", len(list)-n)
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
	c.edited = s.Hashed
	if len(s.Edited) > 0 {
		var list []string
		for _, rel := range s.Edited {
			r := s.Hashed[rel]
			list = append(list, fmt.Sprintf("%s: hashes to %s, its .ziphash says %s (%s)", rel, r.Got, r.Want, r.Why))
		}
		c.add(IDCacheEdited, Problem, title,
			fmt.Sprintf("%d extracted tree%s edited since extraction (go mod verify reports \"dir has been modified\"):\n%s\nbuilds use the edited files, and nothing else notices: the go command checks the zip, not the tree", len(list), plural(len(list), "", "s"), examples(list)),
			"remove those versions and download them again: modproxy clean --module PATH@VERSION (or go clean -modcache); to change a dependency on purpose, copy it out of the cache and point a replace directive (or go.work) at the copy")
	}
	if len(s.Unhashed) > 0 || len(s.HashError) > 0 {
		var list []string
		for _, rel := range s.Unhashed {
			list = append(list, rel+": not re-hashed (over the "+units.Bytes(maxRehashBytes)+" doctor re-hashes per run)")
		}
		list = append(list, s.HashError...)
		c.add(IDCacheEdited, Warning, title,
			fmt.Sprintf("%d extracted tree%s with writable files or files changed after extraction, not checked:\n%s", len(list), plural(len(list), "", "s"), examples(list)),
			"check them one by one with modproxy doctor --module PATH@VERSION, or with go mod verify in the project that uses them")
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
