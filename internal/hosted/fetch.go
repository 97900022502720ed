package hosted

import (
	"context"
	"io"
	"strings"

	"golang.org/x/mod/module"
	"golang.org/x/mod/semver"

	"github.com/modproxy/modproxy/internal/artifact"
	"github.com/modproxy/modproxy/internal/storage"
	"github.com/modproxy/modproxy/internal/upstream"
)

// Fetcher returns the upstream of hosted paths in namespace: it answers
// @v/list and @latest from the published versions (purged ones left out)
// and "not found" for everything else, so a hosted path is never fetched
// from an upstream. Published files are in the store, where the proxy
// finds them before it asks an upstream.
func (s *Service) Fetcher(namespace string) upstream.Fetcher {
	return fetcher{s: s, namespace: namespace}
}

type fetcher struct {
	s         *Service
	namespace string
}

const source = "hosted"

func (f fetcher) Fetch(ctx context.Context, path string) (*upstream.Response, error) {
	req, err := artifact.Parse(path)
	if err != nil || !f.s.HostedIn(f.namespace, req.Module) {
		return nil, f.notFound(path, "not published here")
	}
	if req.Kind == artifact.List || req.Kind == artifact.Latest {
		// Another replica may have published since: answering from an old
		// view would have the proxy cache an old list for everyone.
		f.s.syncLogged(ctx)
	}
	vs := f.s.versions(req.Module)
	switch req.Kind {
	case artifact.List:
		body := ""
		if len(vs) > 0 {
			body = strings.Join(vs, "\n") + "\n"
		}
		return respond(io.NopCloser(strings.NewReader(body)), int64(len(body))), nil
	case artifact.Latest:
		latest := ""
		for _, v := range vs { // sorted: the highest release, else the highest pre-release
			if semver.Prerelease(v) == "" || latest == "" || semver.Prerelease(latest) != "" {
				latest = v
			}
		}
		if latest == "" {
			return nil, f.notFound(path, "no version of "+req.Module+" is published")
		}
		_, _, infoKey, err := Keys(module.Version{Path: req.Module, Version: latest})
		if err != nil {
			return nil, f.notFound(path, err.Error())
		}
		obj, err := f.s.opts.Store.Open(ctx, infoKey)
		if err != nil {
			return nil, &upstream.Error{Upstream: source, Path: path, NotExist: true, Msg: "the .info of " + latest + " is missing from the store"}
		}
		return respondObject(obj), nil
	}
	return nil, f.notFound(path, "not published")
}

func (f fetcher) notFound(path, msg string) error {
	return &upstream.Error{Upstream: source, Path: path, NotExist: true, Msg: msg}
}

func respond(body io.ReadCloser, size int64) *upstream.Response {
	return &upstream.Response{Body: body, Size: size, Source: source}
}

func respondObject(obj storage.Object) *upstream.Response {
	return respond(obj, obj.Info().Size)
}

// versions returns the published versions of path, purged ones left out,
// in semver order.
func (s *Service) versions(path string) []string {
	var out []string
	for _, v := range s.log.Versions(path) {
		if !s.IsPurged(path, v) {
			out = append(out, v)
		}
	}
	semver.Sort(out)
	return out
}
