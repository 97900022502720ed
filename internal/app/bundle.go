package app

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"

	"golang.org/x/mod/module"

	"github.com/modproxy/modproxy/internal/bundle"
	"github.com/modproxy/modproxy/internal/checksum"
	"github.com/modproxy/modproxy/internal/config"
	"github.com/modproxy/modproxy/internal/index"
	"github.com/modproxy/modproxy/internal/storage"
)

// ExportRequest is what `modproxy export` selects.
type ExportRequest struct {
	From       []string // go.sum, go.mod, go.work files or directories
	Namespace  string
	All        bool
	Since      *bundle.Manifest
	Toolchains []string
	Progress   func(done, total int)
}

// Export writes a bundle of the cache cfg names to w. It only reads the
// store (beside a live server). The checksum database and its key are
// those the server verifies with; the trusted tree head is the server's.
func Export(ctx context.Context, cfg config.Config, req ExportRequest, w io.Writer) (*bundle.Manifest, error) {
	st, err := openStoreFor(ctx, cfg, true)
	if err != nil {
		return nil, err
	}
	opts := bundle.ExportOptions{Store: st.store, Private: privateFunc(cfg), Since: req.Since, Toolchains: req.Toolchains, Progress: req.Progress, All: req.All}
	switch {
	case req.All:
	case req.Namespace != "":
		if !hasNamespace(cfg, req.Namespace) {
			return nil, &config.Error{Key: "namespace", Err: fmt.Errorf("no namespace %q is configured", req.Namespace)}
		}
		if opts.Versions, err = bundle.NamespaceVersions(ctx, st.store, req.Namespace); err != nil {
			return nil, err
		}
	default:
		if opts.Versions, err = bundle.VersionsFrom(ctx, req.From); err != nil {
			return nil, err
		}
	}
	specs, err := sumdbSpecs(cfg)
	if err != nil {
		return nil, err
	}
	if spec := verifySpec(cfg, specs); spec != nil && cfg.Verify.Enabled {
		key, err := sumdbKey(cfg, *spec)
		if err != nil {
			return nil, err
		}
		trusted, err := checksum.ReadTreeHead(filepath.Join(cfg.CacheDir, "state", "sumdb"), spec.Name)
		if err != nil {
			return nil, err
		}
		opts.DB = bundle.DB{Key: key, Trusted: trusted}
	} else {
		return nil, &config.Error{Key: "verify.enabled", Err: fmt.Errorf("a bundle needs checksum verification: the records that vouch for its modules come from the database the server verifies with")}
	}
	return bundle.Export(ctx, opts, w)
}

// Import verifies the bundle r and admits it into the cache cfg names
// (beside a live server too); see bundle.Import. The databases and keys
// trusted are the configured ones, as serve finds them. The admitted
// objects are recorded in the metadata index when no server holds it;
// otherwise (or when that fails) warning says what to do.
func Import(ctx context.Context, cfg config.Config, r io.Reader, dryRun bool, progress func(done, total int)) (rep *bundle.ImportReport, warning string, err error) {
	st, err := openStoreFor(ctx, cfg, true)
	if err != nil {
		return nil, "", err
	}
	specs, err := sumdbSpecs(cfg)
	if err != nil {
		return nil, "", err
	}
	keys := map[string]string{}
	for _, spec := range specs {
		k, err := sumdbKey(cfg, spec)
		if err != nil {
			return nil, "", err
		}
		keys[spec.Name] = k
	}
	rep, err = bundle.Import(ctx, bundle.ImportOptions{
		Store: st.store, TempDir: st.tempDir, Keys: keys, StateDir: filepath.Join(cfg.CacheDir, "state", "sumdb"),
		Private: privateFunc(cfg), DryRun: dryRun, Progress: progress,
	}, r)
	if err != nil || dryRun || len(rep.Changes) == 0 {
		return rep, "", err
	}
	return rep, indexImported(ctx, cfg, st.store, rep), nil
}

// indexImported records the admitted objects (and their hash sidecars) in
// the metadata index, so that GC counts them. A missing or stale index is
// rebuilt from the store at the next start anyway; while a running server
// holds the index, the keys are queued for it (queueIndexRecords) and it
// records them within pendingIndexInterval. What could not be done is
// returned as a warning.
func indexImported(ctx context.Context, cfg config.Config, st storage.Store, rep *bundle.ImportReport) string {
	path := filepath.Join(cfg.CacheDir, "index.db")
	if _, err := os.Stat(path); err != nil {
		return ""
	}
	keys := make([]string, 0, 2*len(rep.Changes))
	for _, c := range rep.Changes {
		keys = append(keys, c.Key, c.Key+".h1")
	}
	idx, stale, err := index.Open(path, index.Options{})
	if errors.Is(err, index.ErrLocked) {
		if qerr := queueIndexRecords(cfg.CacheDir, keys); qerr != nil {
			return fmt.Sprintf("the running server's metadata index was not told of the imported objects (%v): GC does not count them until 'modproxy index rebuild' runs with the server stopped", qerr)
		}
		return ""
	}
	if err != nil {
		return fmt.Sprintf("the metadata index was not updated (%v): GC does not count the imported objects until 'modproxy index rebuild' runs with the server stopped", err)
	}
	defer idx.Close()
	if stale {
		return ""
	}
	if _, err := recordStored(ctx, idx, st, keys); err != nil {
		return fmt.Sprintf("some imported objects were not recorded in the metadata index (%v): GC does not count them until 'modproxy index rebuild' runs with the server stopped", err)
	}
	return ""
}

func privateFunc(cfg config.Config) func(string) bool {
	patterns := strings.Join(cfg.Verify.Private, ",")
	return func(path string) bool { return module.MatchPrefixPatterns(patterns, path) }
}

func hasNamespace(cfg config.Config, name string) bool {
	for _, ns := range cfg.Namespaces {
		if ns.Name == name {
			return true
		}
	}
	return false
}
