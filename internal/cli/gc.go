package cli

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"io/fs"
	"log/slog"
	"net/http"
	"os"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/modproxy/modproxy/internal/admin"
	"github.com/modproxy/modproxy/internal/app"
	"github.com/modproxy/modproxy/internal/cacheadmin"
	"github.com/modproxy/modproxy/internal/config"
	"github.com/modproxy/modproxy/internal/units"
)

const gcHelp = `Evicts module versions from a modproxy cache directory by the [gc]
policies of the configuration (size cap with least-recently-used order,
max idle time, keep the newest N versions; pins and go.sum sets are never
evicted). --dry-run prints the plan (what, why, bytes) and changes
nothing. A run moves whole versions to the trash, where they stay
restorable for gc.trash_retention; "gc trash" lists the batches and
"gc restore ID" brings one back byte for byte. Every eviction and restore
is written to the audit log.

` + runningServerHelp + `

Exit status: 0 on success, 1 on failure, 2 on a usage or configuration
error.`

// runningServerHelp is how gc and index work while a server runs.
const runningServerHelp = `While a server runs on the cache directory it holds the metadata index, and
the command asks that server instead, through its admin API: the server
records the API's address in CACHE_DIR/state/admin.json when it starts (so
its admin listener must be on), and the token is admin.token
(MODPROXY_ADMIN_TOKEN) when it has one. The plan and the figures are then
the running server's, made with its configuration.

Sizes are the cache's size as the metadata index records it: the sum of
the stored size of every object (module files, their recorded hashes,
lists, checksum database files; not the trash), in binary units (1 MiB =
1024 KiB), the same figure as the admin API, the dashboard and the
modproxy_store_bytes metric.`

func gcCommand() *command {
	return &command{
		name: "gc", summary: "evict module versions by the cache policies (or print the plan)", help: gcHelp,
		setup: func(fs *flag.FlagSet) runFunc {
			cf := addConfigFlags(fs, false)
			dry := fs.Bool("dry-run", false, "print the plan; change nothing")
			jsonOut := fs.Bool("json", false, "print JSON")
			return func(ctx context.Context, env Env, _ []string) int {
				return withCache(ctx, env, cf, "modproxy gc", *jsonOut, func(c cacheAPI) (any, error) {
					if *dry {
						return c.GCPlan(ctx)
					}
					return c.GCRun(ctx)
				})
			}
		},
		subs: []*command{{
			name: "trash", summary: "list the trash batches of GC runs and purges",
			help: "Lists the trash batches of the cache directory (GC runs and purges), each\n" +
				"restorable with \"modproxy gc restore ID\" until it expires.\n\n" + runningServerHelp,
			setup: func(fs *flag.FlagSet) runFunc {
				cf := addConfigFlags(fs, false)
				jsonOut := fs.Bool("json", false, "print JSON")
				return func(ctx context.Context, env Env, _ []string) int {
					return withCache(ctx, env, cf, "modproxy gc trash", *jsonOut, func(c cacheAPI) (any, error) { return c.Trash(ctx) })
				}
			},
		}, {
			name: "restore", args: "TRASH-ID", minArgs: 1, maxArgs: 1, summary: "move a trash batch back into the cache",
			help: "Moves the versions of a trash batch back into the cache, byte for byte,\n" +
				"and records it in the audit log.\n\n" + runningServerHelp,
			setup: func(fs *flag.FlagSet) runFunc {
				cf := addConfigFlags(fs, false)
				jsonOut := fs.Bool("json", false, "print JSON")
				return func(ctx context.Context, env Env, args []string) int {
					return withCache(ctx, env, cf, "modproxy gc restore", *jsonOut, func(c cacheAPI) (any, error) { return c.Restore(ctx, args[0]) })
				}
			},
		}},
	}
}

// cacheAPI is the cache administration gc and index use: a running
// server's admin API (*admin.Client), or a server wired on the cache
// directory without listening (localCache).
type cacheAPI interface {
	Status(ctx context.Context) (admin.Status, error)
	GCPlan(ctx context.Context) (admin.GCPlan, error)
	GCRun(ctx context.Context) (admin.GCResult, error)
	Trash(ctx context.Context) ([]admin.TrashEntry, error)
	Restore(ctx context.Context, id string) (admin.RestoreResult, error)
}

// localCache is cacheAPI over a server of this process; the audit log
// names the actor "cli".
type localCache struct{ b admin.Backend }

func (l localCache) Status(ctx context.Context) (admin.Status, error) { return l.b.Status(ctx) }
func (l localCache) GCPlan(ctx context.Context) (admin.GCPlan, error) { return l.b.GCPlan(ctx) }
func (l localCache) GCRun(ctx context.Context) (admin.GCResult, error) {
	return l.b.GCRun(ctx, "cli")
}
func (l localCache) Trash(ctx context.Context) ([]admin.TrashEntry, error) { return l.b.Trash(ctx) }
func (l localCache) Restore(ctx context.Context, id string) (admin.RestoreResult, error) {
	return l.b.Restore(ctx, "cli", id)
}

// withCache runs do on the cache administration of the configured cache
// directory and prints its answer (JSON with jsonOut).
func withCache(ctx context.Context, env Env, cf *configFlags, cmd string, jsonOut bool, do func(cacheAPI) (any, error)) int {
	return withCacheWrite(ctx, env, cf, cmd, jsonOut, do, writeGC)
}

// withCacheWrite is withCache with the text output's writer.
func withCacheWrite(ctx context.Context, env Env, cf *configFlags, cmd string, jsonOut bool, do func(cacheAPI) (any, error), write func(io.Writer, any)) int {
	cfg, code := loadCacheConfig(ctx, env, cf, cmd)
	if code != ExitOK {
		return code
	}
	c, closeCache, code := openCache(ctx, env, cfg, cmd)
	if c == nil {
		return code
	}
	defer closeCache()
	out, err := do(c)
	if err != nil {
		fmt.Fprintf(env.Stderr, "%s: %v\n", cmd, err)
		return cacheExit(err)
	}
	if jsonOut {
		writeJSON(env.Stdout, out)
		return ExitOK
	}
	write(env.Stdout, out)
	return ExitOK
}

func writeJSON(w io.Writer, v any) {
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	_ = enc.Encode(v)
}

// cacheExit maps the error classes of the cache administration to exit
// codes: a request that cannot succeed as given (invalid, or naming
// something that does not exist) is a usage error; anything else, being
// in use included, a failure.
func cacheExit(err error) int {
	switch {
	case errors.Is(err, cacheadmin.ErrInvalid), errors.Is(err, cacheadmin.ErrNotFound), errors.Is(err, admin.ErrNotFound):
		return ExitUsage
	default:
		return ExitFailure
	}
}

// loadCacheConfig loads the configuration of a command that works on a
// cache directory without fetching.
func loadCacheConfig(ctx context.Context, env Env, cf *configFlags, cmd string) (config.Config, int) {
	cf.noUpstream(env)
	cfg, err := cf.load(ctx, env)
	if err != nil {
		fmt.Fprintf(env.Stderr, "%s: %v\n", cmd, err)
		return cfg, ExitUsage
	}
	return cfg, ExitOK
}

// openCache returns the cache administration of cfg's cache directory: the
// admin API of the server running on it when there is one, else a server
// wired on the directory without listening. It reports failures itself
// (then the cacheAPI is nil).
func openCache(ctx context.Context, env Env, cfg config.Config, cmd string) (cacheAPI, func(), int) {
	remote, refused := runningServer(ctx, cfg)
	if remote != nil {
		fmt.Fprintf(env.Stderr, "%s: asking the server running on %s (%s)\n", cmd, cfg.CacheDir, remote.URL)
		return remote, func() {}, ExitOK
	}
	cfg.Admin.Listen = ""
	log := app.NewLogger(config.Log{Format: cfg.Log.Format, Level: "warn"}, env.Stderr)
	srv, err := app.New(cfg, log, app.Info{Version: Version()})
	if err != nil {
		fmt.Fprintf(env.Stderr, "%s: %v\n", cmd, err)
		if errors.Is(err, app.ErrIndexLocked) {
			fmt.Fprintf(env.Stderr, "%s: %s\n", cmd, lockedHelp(refused))
		}
		return nil, nil, ExitFailure
	}
	return localCache{srv.Admin()}, func() { srv.Close() }, ExitOK
}

// lockedHelp explains an index held by another process that could not be
// asked (refused: why its admin API did not serve us, or nil).
func lockedHelp(refused error) string {
	if refused != nil {
		return "the cache directory is in use by a running server, whose admin API refused the request (" + refused.Error() + "): give its token in admin.token or MODPROXY_ADMIN_TOKEN"
	}
	return "the cache directory is in use by another process (a running server?) that recorded no admin API in state/admin.json: start the server with its admin listener on (admin.listen), or stop it"
}

// runningServer returns a client of the admin API of the server running
// on cfg's cache directory, or nil: when no server recorded one
// (app.RunningAdmin), when the recorded one does not answer (it stopped),
// and when the server answering there runs on another cache directory.
// refused is set when the recorded API answered but refused the request
// (a token is needed).
func runningServer(ctx context.Context, cfg config.Config) (c *admin.Client, refused error) {
	st, ok, err := app.RunningAdmin(cfg.CacheDir)
	if err != nil || !ok {
		return nil, nil
	}
	c = &admin.Client{URL: st.URL, Token: cfg.Admin.Token, HTTP: &http.Client{}}
	sctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	status, err := c.Status(sctx)
	var ae *admin.APIError
	switch {
	case errors.As(err, &ae) && (ae.Status == http.StatusUnauthorized || ae.Status == http.StatusForbidden):
		return nil, err
	case err != nil:
		return nil, nil
	case !sameDir(status.CacheDir, cfg.CacheDir):
		return nil, nil
	}
	return c, nil
}

// sameDir reports whether a and b name the same existing directory.
func sameDir(a, b string) bool {
	sa, err := os.Stat(a)
	if err != nil {
		return false
	}
	sb, err := os.Stat(b)
	return err == nil && os.SameFile(sa, sb)
}

func writeGC(w io.Writer, out any) {
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	defer tw.Flush()
	switch v := out.(type) {
	case admin.GCPlan:
		fmt.Fprintln(tw, "MODULE\tVERSION\tBYTES\tREASON")
		for _, it := range v.Items {
			fmt.Fprintf(tw, "%s\t%s\t%d\t%s\n", it.Module, it.Version, it.Bytes, it.Reason)
		}
		tw.Flush()
		fmt.Fprintf(w, "plan: evict %d versions, %s of %s (leaves %s); %d pinned versions kept\n",
			len(v.Items), units.Bytes(v.Bytes), units.Bytes(v.StoreBytes), units.Bytes(v.AfterBytes), v.PinnedKept)
	case admin.GCResult:
		fmt.Fprintf(w, "evicted %d versions (%s) to trash %s; %d skipped because in use\n", v.Evicted, units.Bytes(v.Bytes), orNone(v.TrashID), v.Skipped)
	case []admin.TrashEntry:
		fmt.Fprintln(tw, "ID\tCREATED\tEXPIRES\tBYTES\tREASON\tVERSIONS")
		for _, e := range v {
			fmt.Fprintf(tw, "%s\t%s\t%s\t%d\t%s\t%s\n", e.ID, e.Created.Format("2006-01-02 15:04"), e.Expires.Format("2006-01-02 15:04"), e.Bytes, e.Reason, strings.Join(e.Versions, " "))
		}
	case admin.RestoreResult:
		fmt.Fprintf(w, "restored %d versions (%s): %s\n", len(v.Restored), units.Bytes(v.Bytes), strings.Join(v.Restored, " "))
	}
}

func orNone(s string) string {
	if s == "" {
		return "(none)"
	}
	return s
}

const indexHelp = `Prints what the metadata index of a cache directory records (CACHE_DIR/
index.db: size, store time, last access and hit count of every object):
the objects, the cache's size and the module versions. It only reads the
index, never creates or changes it.

` + runningServerHelp + `

Exit status: 0 on success, 1 on failure (no index, or it cannot be read),
2 on a usage or configuration error.`

const indexRebuildHelp = `Rebuilds the metadata index (CACHE_DIR/index.db: size, store time, last
access and hit count of every object) from a walk of the store. Sizes and
store times come back exactly; access statistics of objects still indexed
are kept, others restart from their store time. The server does this by
itself at start-up when the index is missing or corrupt; it must not be
running on the same cache directory (it keeps its index up to date).

Exit status: 0 on success, 1 on failure, 2 on a usage or configuration
error.`

func indexCommand() *command {
	return &command{
		name: "index", summary: "show the metadata index's figures of a cache directory", help: indexHelp,
		setup: func(fs *flag.FlagSet) runFunc {
			cf := addConfigFlags(fs, false)
			jsonOut := fs.Bool("json", false, "print JSON")
			return func(ctx context.Context, env Env, _ []string) int { return runIndex(ctx, env, cf, *jsonOut) }
		},
		subs: []*command{{
			name: "rebuild", summary: "rebuild the metadata index from the store", help: indexRebuildHelp,
			setup: func(fs *flag.FlagSet) runFunc {
				cf := addConfigFlags(fs, false)
				return func(ctx context.Context, env Env, _ []string) int { return runIndexRebuild(ctx, env, cf) }
			},
		}},
	}
}

// indexReport is the output of modproxy index.
type indexReport struct {
	CacheDir string `json:"cache_dir"`
	Bytes    int64  `json:"bytes"`
	Objects  int64  `json:"objects"`
	Versions int64  `json:"versions"`
	Server   string `json:"server,omitempty"` // the running server's admin API that answered
}

func runIndex(ctx context.Context, env Env, cf *configFlags, jsonOut bool) int {
	const cmd = "modproxy index"
	cfg, code := loadCacheConfig(ctx, env, cf, cmd)
	if code != ExitOK {
		return code
	}
	rep := indexReport{CacheDir: cfg.CacheDir}
	remote, refused := runningServer(ctx, cfg)
	if remote != nil {
		st, err := remote.Status(ctx)
		if err != nil {
			fmt.Fprintf(env.Stderr, "%s: %v\n", cmd, err)
			return ExitFailure
		}
		rep.Bytes, rep.Objects, rep.Versions, rep.Server = st.Store.Bytes, st.Store.Objects, st.Store.Versions, remote.URL
	} else {
		sum, err := app.ReadIndexSummary(cfg)
		switch {
		case errors.Is(err, fs.ErrNotExist):
			fmt.Fprintf(env.Stderr, "%s: %s has no metadata index (the server creates it at start; so does modproxy index rebuild)\n", cmd, cfg.CacheDir)
			return ExitFailure
		case errors.Is(err, app.ErrIndexLocked):
			fmt.Fprintf(env.Stderr, "%s: %v\n%s: %s\n", cmd, err, cmd, lockedHelp(refused))
			return ExitFailure
		case err != nil:
			fmt.Fprintf(env.Stderr, "%s: %v\n", cmd, err)
			return ExitFailure
		}
		rep.Bytes, rep.Objects, rep.Versions = sum.Bytes, sum.Objects, sum.Versions
	}
	if jsonOut {
		writeJSON(env.Stdout, rep)
		return ExitOK
	}
	fmt.Fprintf(env.Stdout, "%s: %d objects, %s, %d module versions", rep.CacheDir, rep.Objects, units.Bytes(rep.Bytes), rep.Versions)
	if rep.Server != "" {
		fmt.Fprintf(env.Stdout, " (from the running server at %s)", rep.Server)
	}
	fmt.Fprintln(env.Stdout)
	return ExitOK
}

func runIndexRebuild(ctx context.Context, env Env, cf *configFlags) int {
	const cmd = "modproxy index rebuild"
	cfg, code := loadCacheConfig(ctx, env, cf, cmd)
	if code != ExitOK {
		return code
	}
	if remote, _ := runningServer(ctx, cfg); remote != nil {
		fmt.Fprintf(env.Stderr, "%s: a server is running on %s (admin API %s): it keeps its index up to date, and rebuilds it at start when it is missing or corrupt; stop it to rebuild\n", cmd, cfg.CacheDir, remote.URL)
		return ExitFailure
	}
	bytes, objects, err := app.RebuildIndex(ctx, cfg, slog.New(slog.DiscardHandler))
	if err != nil {
		fmt.Fprintf(env.Stderr, "%s: %v\n", cmd, err)
		if errors.Is(err, app.ErrIndexLocked) {
			fmt.Fprintf(env.Stderr, "%s: the cache directory is in use by another process (a running server?): stop it to rebuild\n", cmd)
		}
		return ExitFailure
	}
	fmt.Fprintf(env.Stdout, "index rebuilt: %d objects, %s\n", objects, units.Bytes(bytes))
	return ExitOK
}
