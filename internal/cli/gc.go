package cli

import (
	"github.com/modproxy/modproxy/internal/units"

	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"strings"
	"text/tabwriter"

	"github.com/modproxy/modproxy/internal/admin"
	"github.com/modproxy/modproxy/internal/app"
	"github.com/modproxy/modproxy/internal/cacheadmin"
	"github.com/modproxy/modproxy/internal/config"
)

const gcHelp = `Usage: modproxy gc [--dry-run] [--json] [flags]
       modproxy gc trash [--json] [flags]
       modproxy gc restore [flags] TRASH-ID

Evicts module versions from a modproxy cache directory by the [gc]
policies of the configuration (size cap with least-recently-used order,
max idle time, keep the newest N versions; pins and go.sum sets are never
evicted). --dry-run prints the plan (what, why, bytes) and changes
nothing. A run moves whole versions to the trash, where they stay
restorable for gc.trash_retention; "gc trash" lists the batches and
"gc restore ID" brings one back byte for byte. Every eviction and restore
is written to the audit log.

The cache directory's metadata index is locked by a running server: then
use its admin API instead (POST /api/gc/run, GET /api/gc/plan,
POST /api/trash/restore).

Exit status: 0 on success, 1 on failure, 2 on a usage or configuration
error.

Flags:
%s
Configuration keys (file key, environment variable):
%s`

func runGC(ctx context.Context, env Env, args []string) int {
	sub := ""
	if len(args) > 0 && (args[0] == "restore" || args[0] == "trash") {
		sub, args = args[0], args[1:]
	}
	fs := flag.NewFlagSet("gc", flag.ContinueOnError)
	fs.SetOutput(env.Stderr)
	cf := addConfigFlags(fs, false)
	dry := fs.Bool("dry-run", false, "print the plan; change nothing")
	jsonOut := fs.Bool("json", false, "print JSON")
	fs.Usage = func() { configHelp(fs, env.Stderr, gcHelp) }
	if err := fs.Parse(args); err != nil {
		return flagExit(err)
	}
	if (sub == "restore") != (fs.NArg() == 1) || (sub != "restore" && fs.NArg() > 0) {
		fs.Usage()
		return ExitUsage
	}
	srv, code := offlineServer(ctx, env, cf, "gc")
	if srv == nil {
		return code
	}
	defer srv.Close()
	b := srv.Admin()
	var out any
	var err error
	switch {
	case sub == "restore":
		out, err = b.Restore(ctx, "cli", fs.Arg(0))
	case sub == "trash":
		out, err = b.Trash(ctx)
	case *dry:
		out, err = b.GCPlan(ctx)
	default:
		out, err = b.GCRun(ctx, "cli")
	}
	if err != nil {
		fmt.Fprintf(env.Stderr, "modproxy gc: %v\n", err)
		return cacheExit(err)
	}
	if *jsonOut {
		enc := json.NewEncoder(env.Stdout)
		enc.SetIndent("", "  ")
		_ = enc.Encode(out)
		return ExitOK
	}
	writeGC(env.Stdout, out)
	return ExitOK
}

// cacheExit maps the error classes of the cache administration to exit
// codes: a request that cannot succeed as given (invalid, or naming
// something that does not exist) is a usage error; anything else, being
// in use included, a failure.
func cacheExit(err error) int {
	switch {
	case errors.Is(err, cacheadmin.ErrInvalid), errors.Is(err, cacheadmin.ErrNotFound):
		return ExitUsage
	default:
		return ExitFailure
	}
}

// offlineServer wires a server on the configured cache directory without
// listening (for commands that work on the cache while no server runs).
func offlineServer(ctx context.Context, env Env, cf *configFlags, cmd string) (*app.Server, int) {
	cf.noUpstream(env)
	cfg, err := cf.load(ctx, env)
	if err != nil {
		fmt.Fprintf(env.Stderr, "modproxy %s: %v\n", cmd, err)
		return nil, ExitUsage
	}
	cfg.Admin.Listen = ""
	log := app.NewLogger(config.Log{Format: cfg.Log.Format, Level: "warn"}, env.Stderr)
	srv, err := app.New(cfg, log, app.Info{Version: Version()})
	if err != nil {
		fmt.Fprintf(env.Stderr, "modproxy %s: %v\n", cmd, err)
		if errors.Is(err, app.ErrIndexLocked) {
			fmt.Fprintf(env.Stderr, "modproxy %s: the cache directory is in use by a running server: use its admin API\n", cmd)
		}
		return nil, ExitFailure
	}
	return srv, ExitOK
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

const indexHelp = `Usage: modproxy index rebuild [flags]

Rebuilds the metadata index (CACHE_DIR/index.db: size, store time, last
access and hit count of every object) from a walk of the store. Sizes and
store times come back exactly; access statistics of objects still indexed
are kept, others restart from their store time. The server does this by
itself at start-up when the index is missing or corrupt; it must not be
running on the same cache directory.

Flags:
%s
Configuration keys (file key, environment variable):
%s`

func runIndex(ctx context.Context, env Env, args []string) int {
	fs := flag.NewFlagSet("index", flag.ContinueOnError)
	fs.SetOutput(env.Stderr)
	cf := addConfigFlags(fs, false)
	fs.Usage = func() { configHelp(fs, env.Stderr, indexHelp) }
	if len(args) == 0 || args[0] != "rebuild" {
		if len(args) > 0 && (args[0] == "-h" || args[0] == "--help" || args[0] == "-help") {
			fs.Usage()
			return ExitOK
		}
		fs.Usage()
		return ExitUsage
	}
	if err := fs.Parse(args[1:]); err != nil {
		return flagExit(err)
	}
	cf.noUpstream(env)
	cfg, err := cf.load(ctx, env)
	if err != nil {
		fmt.Fprintf(env.Stderr, "modproxy index: %v\n", err)
		return ExitUsage
	}
	bytes, objects, err := app.RebuildIndex(ctx, cfg, slog.New(slog.DiscardHandler))
	if err != nil {
		fmt.Fprintf(env.Stderr, "modproxy index rebuild: %v\n", err)
		return ExitFailure
	}
	fmt.Fprintf(env.Stdout, "index rebuilt: %d objects, %s\n", objects, units.Bytes(bytes))
	return ExitOK
}
