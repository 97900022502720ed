package modrefs

import (
	"errors"
	"strings"

	"golang.org/x/mod/module"
)

var errMalformedSum = errors.New("malformed go.sum line (want MODULE VERSION HASH)")

// AddGoSum adds what the content of a go.sum or go.work.sum file
// references. name is the file's name for problems.
func (s *Set) AddGoSum(name string, data []byte) {
	n := 0
	for line := range strings.Lines(string(data)) {
		n++
		f := strings.Fields(line)
		if len(f) == 0 {
			continue
		}
		if len(f) != 3 {
			s.problem(&FileError{File: name, Line: n, Err: errMalformedSum})
			continue
		}
		version, need := f[1], Zip
		if v, ok := strings.CutSuffix(version, "/go.mod"); ok {
			version, need = v, GoMod
		}
		s.add(name, n, module.Version{Path: f[0], Version: version}, need)
	}
}
