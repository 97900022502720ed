package modrefs

import (
	"errors"

	"golang.org/x/mod/modfile"
	"golang.org/x/mod/module"
)

// ModulePath returns the module path a go.mod file declares, checked
// with module.CheckPath. A file without a module line is an error.
func ModulePath(gomod []byte) (string, error) {
	p := modfile.ModulePath(gomod)
	if p == "" {
		return "", errors.New("go.mod has no module line")
	}
	if err := module.CheckPath(p); err != nil {
		return "", err
	}
	return p, nil
}
