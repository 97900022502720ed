package modrefs

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
)

// kind is how a file is read, from its name.
type kind int

const (
	notModFile kind = iota
	goWorkFile
	goModFile
	goSumFile // go.sum, go.work.sum
)

// kindOf tells how a file given by name is read.
func kindOf(name string) kind {
	base := filepath.Base(name)
	switch {
	case base == "go.work":
		return goWorkFile
	case strings.HasSuffix(base, ".sum"):
		return goSumFile
	case strings.HasSuffix(base, ".mod"):
		return goModFile
	}
	return notModFile
}

// walked reports whether a directory walk reads a file of this name: only
// the go command's own names, not every *.mod or *.sum.
func walked(name string) bool {
	switch name {
	case "go.mod", "go.sum", "go.work", "go.work.sum":
		return true
	}
	return false
}

// ignoredDir reports whether the go command ignores a directory of this
// name in ./... patterns.
func ignoredDir(name string) bool {
	return strings.HasPrefix(name, ".") || strings.HasPrefix(name, "_") || name == "testdata" || name == "vendor"
}

// AddPaths reads files and directories (see the package doc). The error is
// a path that does not exist or cannot be read, a file given by name that
// none of the rules reads (a *FileError with ErrNotModFile), or ctx's
// error; what does not parse is a problem (Problems), not an error.
func (s *Set) AddPaths(ctx context.Context, paths ...string) error {
	var files []string
	for _, p := range paths {
		st, err := os.Stat(p)
		if err != nil {
			return err
		}
		if !st.IsDir() {
			if kindOf(p) == notModFile {
				return &FileError{File: p, Err: ErrNotModFile}
			}
			files = append(files, p)
			continue
		}
		err = filepath.WalkDir(p, func(path string, d fs.DirEntry, err error) error {
			if err != nil {
				return err
			}
			if err := ctx.Err(); err != nil {
				return err
			}
			if d.IsDir() {
				if (path != p && ignoredDir(d.Name())) || s.skipDir(path) {
					return filepath.SkipDir
				}
				return nil
			}
			if d.Type().IsRegular() && walked(d.Name()) {
				files = append(files, path)
			}
			return nil
		})
		if err != nil {
			return err
		}
	}
	for _, phase := range []kind{goWorkFile, goModFile, goSumFile} {
		for _, f := range files {
			if kindOf(f) != phase {
				continue
			}
			if err := ctx.Err(); err != nil {
				return err
			}
			var err error
			switch phase {
			case goWorkFile:
				err = s.readWork(f)
			case goModFile:
				err = s.readMod(f)
			case goSumFile:
				err = s.readSum(f)
			}
			if err != nil {
				return err
			}
		}
	}
	return nil
}

func (s *Set) skipDir(dir string) bool {
	if len(s.skip) == 0 {
		return false
	}
	abs, err := filepath.Abs(dir)
	return err == nil && s.skip[abs]
}

// readFile reads name unless it was read before (then data is nil).
func (s *Set) readFile(name string) (data []byte, err error) {
	abs, err := filepath.Abs(name)
	if err != nil {
		return nil, err
	}
	if s.read[abs] {
		return nil, nil
	}
	data, err = os.ReadFile(name)
	if err != nil {
		return nil, err
	}
	s.read[abs] = true
	s.files = append(s.files, name)
	return data, nil
}

// readSum reads a go.sum or go.work.sum file once.
func (s *Set) readSum(name string) error {
	data, err := s.readFile(name)
	if data != nil {
		s.AddGoSum(name, data)
	}
	return err
}

// readSumIfExists reads the go.sum-format file name if there is one.
func (s *Set) readSumIfExists(name string) error {
	if _, err := os.Stat(name); errors.Is(err, fs.ErrNotExist) {
		return nil
	}
	return s.readSum(name)
}

// readMod reads a go.mod once, as a single main module.
func (s *Set) readMod(name string) error {
	data, err := s.readFile(name)
	if data != nil {
		s.AddGoMod(name, data)
	}
	return err
}

// AddGoMod adds what the content of a go.mod file references, read as a
// single main module. name is the file's name for problems.
func (s *Set) AddGoMod(name string, data []byte) {
	if m := s.parseMod(name, data); m != nil {
		s.resolve(&unit{mods: []*modFile{m}})
	}
}

// readWork reads a go.work once, with the go.mod and go.sum files of the
// modules it uses and the go.work.sum beside it.
func (s *Set) readWork(name string) error {
	data, err := s.readFile(name)
	if data == nil {
		return err
	}
	w := s.parseWork(name, data)
	if w == nil {
		return nil
	}
	u := &unit{work: w, workName: name}
	dir := filepath.Dir(name)
	var sums []string
	for _, use := range w.Use {
		d := filepath.FromSlash(use.Path)
		if !filepath.IsAbs(d) {
			d = filepath.Join(dir, d)
		}
		gomod := filepath.Join(d, "go.mod")
		data, err := os.ReadFile(gomod)
		if errors.Is(err, fs.ErrNotExist) {
			s.problem(&FileError{File: name, Line: use.Syntax.Start.Line, Err: fmt.Errorf("use %s: %w", use.Path, err)})
			continue
		}
		if err != nil {
			return err
		}
		if abs, err := filepath.Abs(gomod); err == nil && !s.read[abs] {
			s.read[abs] = true
			s.files = append(s.files, gomod)
		}
		if m := s.parseMod(gomod, data); m != nil {
			u.mods = append(u.mods, m)
		}
		sums = append(sums, filepath.Join(d, "go.sum"))
	}
	s.resolve(u)
	for _, sum := range append(sums, filepath.Join(dir, "go.work.sum")) {
		if err := s.readSumIfExists(sum); err != nil {
			return err
		}
	}
	return nil
}
