package bundle

import (
	"context"
	"errors"
	"fmt"
	"strings"

	"golang.org/x/mod/module"

	"github.com/modproxy/modproxy/internal/artifact"
	"github.com/modproxy/modproxy/internal/modrefs"
	"github.com/modproxy/modproxy/internal/storage"
)

// VersionsFrom returns the versions that the go.mod, go.sum and go.work
// files at paths (files or directories walked, as modrefs reads them)
// reference, sorted. Files that do not parse are an error naming the
// first problem.
func VersionsFrom(ctx context.Context, paths []string) ([]Version, error) {
	set := modrefs.New(modrefs.Options{})
	if err := set.AddPaths(ctx, paths...); err != nil {
		return nil, err
	}
	if ps := set.Problems(); len(ps) > 0 {
		return nil, fmt.Errorf("%w (and %d more problems)", ps[0], len(ps)-1)
	}
	var out []Version
	for _, r := range set.Refs() {
		out = append(out, Version{Path: r.Path, Version: r.Version.Version, GoModOnly: r.Need != modrefs.Zip})
	}
	SortVersions(out)
	return out, nil
}

// NamespaceVersions returns every cached version of the modules namespace
// ns has served (those with a list or latest answer under "ns/NS/").
func NamespaceVersions(ctx context.Context, s storage.Store, ns string) ([]Version, error) {
	mods := map[string]bool{}
	prefix := "ns/" + ns + "/"
	err := s.Walk(ctx, prefix, func(i storage.Info) error {
		req, err := artifact.Parse(strings.TrimPrefix(i.Key, prefix))
		if err == nil && req.Module != "" {
			mods[req.Module] = true
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	if len(mods) == 0 {
		return nil, errors.New("namespace " + ns + " has served no module from this cache")
	}
	var out []Version
	for m := range mods {
		ep, err := module.EscapePath(m)
		if err != nil {
			continue
		}
		vs, err := cachedVersionsUnder(ctx, s, ep+"/@v/")
		if err != nil {
			return nil, err
		}
		out = append(out, vs...)
	}
	SortVersions(out)
	return out, nil
}
