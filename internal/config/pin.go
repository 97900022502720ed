package config

import (
	"fmt"
	"path"
	"strings"

	"golang.org/x/mod/module"
)

// CheckPin checks the syntax of a GC pin, "module-pattern[@version]": the
// pattern is one module path prefix pattern as GOPRIVATE writes them
// (path.Match globs per element, matched against a module path and its
// prefixes; no commas, spaces or empty elements; without globs, a valid
// import path), and the version, when given, a canonical module version
// ("v1.2.3", a pseudo-version, "+incompatible"), because pins match
// versions exactly.
func CheckPin(p string) error {
	pat, vers, hasVersion := strings.Cut(p, "@")
	if err := checkPattern(pat); err != nil {
		return fmt.Errorf("%q: %w; want module-pattern[@version]", p, err)
	}
	if hasVersion && (vers == "" || module.CanonicalVersion(vers) != vers) {
		return fmt.Errorf("%q: version %q is not a canonical module version (e.g. v1.2.3); want module-pattern[@version]", p, vers)
	}
	return nil
}

// checkPattern checks one module path prefix pattern.
func checkPattern(pat string) error {
	switch {
	case pat == "":
		return fmt.Errorf("empty module pattern")
	case strings.ContainsAny(pat, ", \t"):
		return fmt.Errorf("module pattern %q holds a comma or white space (one pattern per entry)", pat)
	}
	glob := false
	for elem := range strings.SplitSeq(pat, "/") {
		if elem == "" {
			return fmt.Errorf("module pattern %q has an empty path element", pat)
		}
		if _, err := path.Match(elem, ""); err != nil {
			return fmt.Errorf("module pattern %q: element %q is not a valid glob", pat, elem)
		}
		glob = glob || strings.ContainsAny(elem, "*?[\\")
	}
	if !glob {
		if err := module.CheckImportPath(pat); err != nil {
			return fmt.Errorf("module pattern %q is not a valid module path prefix: %w", pat, err)
		}
	}
	return nil
}
