package cli

import (
	"github.com/modproxy/modproxy/internal/units"

	"bufio"
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/modproxy/modproxy/internal/audit"
	"github.com/modproxy/modproxy/internal/clean"
)

const cleanHelp = `Cleans the go command's module cache (the directory "go env GOMODCACHE"
names) selectively, keeping the go command's own rules.

Nothing is removed unless --yes is given, or you answer "y" to the prompt
shown when standard input and standard error are terminals (never with
--json). Otherwise, and always with --dry-run, clean only prints what would
go: one line per entry, and the entries and bytes per category (modules,
toolchains, vcs, sumdb; other with --all).

What goes:
  --all        everything, like "go clean -modcache", except the empty lock
               files and the @v/list files (emptied); cannot be combined
               with the selectors below.
  --keep-referenced DIR
               keep every module version that a go.sum, go.work.sum, go.mod
               or go.work anywhere under DIR needs; remove the other module
               versions.
  --older-than AGE
               only entries downloaded at least AGE ago.
  --module PATTERN[@VERSION]
               only module versions (and toolchains, VCS clones) matching.
  --compact    selected module versions lose only their extracted source
               tree; .zip, .ziphash, .info and .mod stay, so the go command
               extracts them again without the network. Alone, it compacts
               every version.
  --toolchains also golang.org/toolchain versions.
  --vcs        also the VCS clones of direct downloads (cache/vcs).
  --sumdb      also the checksum database cache (cache/download/sumdb).

Module versions are candidates when --keep-referenced, --older-than, --module
or --compact is given, and one goes when it passes every filter given.
Toolchains, VCS clones and the checksum database cache are touched only with
--toolchains, --vcs or --sumdb (or --all). --older-than narrows them too;
--module narrows toolchains and VCS clones (a clone by its repository's host
and path); --keep-referenced keeps the toolchains that go and toolchain
lines name ("go 1.22" names every go1.22.x). The toolchains of "go env GOVERSION" and of a version in
GOTOOLCHAIN are never removed.

References: a go.sum or go.work.sum line "M V h1:..." keeps every file of
M@V; a line "M V/go.mod h1:..." keeps only its .mod and .info (its .zip,
.ziphash and extracted tree go). A go.mod require keeps every file, as go mod
download fetches them; a replaced version keeps nothing and its replacement
what the requirement needs (a replacement no require uses keeps its .mod); a
require of an excluded version keeps nothing. A go.work's modules are read
as one workspace, with its use directories outside DIR. Directories the go
command ignores (names starting with "." or "_", testdata, vendor) and the
module cache are not searched; symbolic links are not followed. An unreadable
file or directory is an error, and so is a DIR with none of these files (it
is probably the wrong directory); a file that does not parse is skipped with
a warning.

Ages: the module cache records when files were downloaded or extracted, not
when a module was last used. --older-than compares the newest modification
time among an entry's files, so a module used every day but downloaded 40
days ago is older than 30d. AGE is days (30d), weeks (2w) or a Go duration
(36h).

Patterns are matched like GOPRIVATE patterns: a glob matching a prefix of the
module path (example.com/*, corp.example.com). @VERSION is a glob too
(@v1.2.3, @v0.0.0-2023*).

Safety:
  - A module version is removed while holding its lock file
    (cache/download/MODULE/@v/VERSION.lock, the go command's lockedfile
    protocol; cache/vcs/HASH.lock for a clone). An entry that another
    process keeps locked for longer than --lock-timeout is skipped whole and
    reported, never half removed.
  - The extracted tree disappears first, in one rename, then its .ziphash,
    .zip, .mod and .info: the go command never sees a tree without its
    .ziphash, which is what it trusts a tree by.
  - Read-only directories (the go command makes extracted trees read-only)
    are made writable before their contents are removed or moved.
  - The module's @v/list is rewritten as the go command writes it, without
    the removed versions.
  - Lock files are never removed.

Trash: with --trash, entries are moved to a trash directory (DIR, or the
per-user cache directory + /modproxy/clean/trash when DIR is omitted)
instead of being deleted; interrupted extractions (a tree with a .partial
file) are deleted all the same. "modproxy clean restore" moves the newest run, or
run ID, back (each version under its lock, its tree last and only with its
.ziphash; a file whose place was taken meanwhile stays in the trash);
"restore --list" lists the runs; "empty-trash" deletes runs (all, or the IDs
given; a dry run without --yes).

Audit: every run that changes something appends one JSON line per entry, and
one for the run, to the audit log (--audit-log; default the per-user cache
directory + /modproxy/clean/audit.log).

Exit status: 0 on success (also for a dry run, and when locked entries were
skipped), 1 when an entry could not be removed or restored or the run failed,
2 on a usage error.`

// cleanListFlag is a repeatable flag whose values may also be comma-separated.
type cleanListFlag []string

func (l *cleanListFlag) String() string { return strings.Join(*l, ",") }
func (l *cleanListFlag) Set(s string) error {
	for _, v := range strings.Split(s, ",") {
		if v = strings.TrimSpace(v); v != "" {
			*l = append(*l, v)
		}
	}
	return nil
}

// cleanAgeFlag is an --older-than value.
type cleanAgeFlag struct{ d time.Duration }

func (a *cleanAgeFlag) String() string {
	if a == nil || a.d == 0 {
		return ""
	}
	return a.d.String()
}
func (a *cleanAgeFlag) Set(s string) error {
	d, err := clean.ParseAge(s)
	a.d = d
	return err
}

// cleanTrashDefault stands for "--trash" given without a directory.
const cleanTrashDefault = "\x00default"

// cleanOptionalTrash rewrites a "--trash" that is not followed by a value (the
// end, or another flag) into "--trash=<default marker>", so that both
// "--trash DIR" and a bare "--trash" work.
func cleanOptionalTrash(args []string) []string {
	out := make([]string, 0, len(args))
	for i := 0; i < len(args); i++ {
		a := args[i]
		if a == "--" {
			return append(out, args[i:]...)
		}
		if (a == "--trash" || a == "-trash") && (i+1 == len(args) || strings.HasPrefix(args[i+1], "-")) {
			a += "=" + cleanTrashDefault
		}
		out = append(out, a)
	}
	return out
}

// cleanUserCacheDir is os.UserCacheDir reading the environment through env.
func cleanUserCacheDir(env Env) (string, error) {
	get := func(k string) string { v, _ := env.LookupEnv(k); return v }
	var dir string
	switch runtime.GOOS {
	case "windows":
		dir = get("LocalAppData")
	case "darwin", "ios":
		if h := get("HOME"); h != "" {
			dir = filepath.Join(h, "Library", "Caches")
		}
	case "plan9":
		if h := get("home"); h != "" {
			dir = filepath.Join(h, "lib", "cache")
		}
	default:
		dir = get("XDG_CACHE_HOME")
		if dir == "" || !filepath.IsAbs(dir) {
			dir = ""
			if h := get("HOME"); h != "" {
				dir = filepath.Join(h, ".cache")
			}
		}
	}
	if dir == "" || !filepath.IsAbs(dir) {
		return "", errors.New("cannot find the per-user cache directory (set HOME or XDG_CACHE_HOME, or give the path)")
	}
	return dir, nil
}

// cleanPaths resolves the trash and audit log paths. When a default is
// needed and the per-user cache directory is unknown, it returns an error
// along with the paths it could resolve ("" for the others).
func cleanPaths(env Env, trash, auditLog string) (string, string, error) {
	if trash != cleanTrashDefault && auditLog != "" {
		return trash, auditLog, nil
	}
	base, err := cleanUserCacheDir(env)
	if trash == cleanTrashDefault {
		trash = ""
		if err == nil {
			trash = filepath.Join(base, "modproxy", "clean", "trash")
		}
	}
	if auditLog == "" && err == nil {
		auditLog = filepath.Join(base, "modproxy", "clean", "audit.log")
	}
	return trash, auditLog, err
}

func cleanIsTerminal(v any) bool {
	f, ok := v.(*os.File)
	if !ok {
		return false
	}
	st, err := f.Stat()
	return err == nil && st.Mode()&os.ModeCharDevice != 0
}

// cleanFlags are clean's flags.
type cleanFlags struct {
	o                    clean.Options
	keep, mods           cleanListFlag
	age                  cleanAgeFlag
	dryRun, yes, jsonOut *bool
	trash, auditLog      *string
	lockTimeout          *time.Duration
}

func cleanCommand() *command {
	return &command{
		name: "clean", summary: "safe, selective cleaner for the local module cache (GOMODCACHE)", help: cleanHelp,
		rewrite: cleanOptionalTrash,
		setup: func(fs *flag.FlagSet) runFunc {
			f := &cleanFlags{}
			o := &f.o
			fs.BoolVar(&o.All, "all", false, "remove everything (like go clean -modcache); excludes the other selectors")
			fs.Var(&f.keep, "keep-referenced", "keep the module versions that go.sum, go.work.sum, go.mod and go.work files under `DIR` need; remove the others (repeatable, or comma-separated)")
			fs.Var(&f.age, "older-than", "only entries downloaded at least `AGE` ago: 30d, 2w, 36h (download time: the cache records no last use)")
			fs.Var(&f.mods, "module", "only module versions matching `PATTERN[@VERSION]` (GOPRIVATE-style globs; repeatable, or comma-separated)")
			fs.BoolVar(&o.Compact, "compact", false, "drop only extracted source trees; keep .zip, .ziphash, .info and .mod")
			fs.BoolVar(&o.Toolchains, "toolchains", false, "also golang.org/toolchain versions")
			fs.BoolVar(&o.VCS, "vcs", false, "also the VCS clones in cache/vcs")
			fs.BoolVar(&o.SumDB, "sumdb", false, "also the checksum database cache in cache/download/sumdb")
			f.dryRun = fs.Bool("dry-run", false, "only print what would be removed (the default without --yes or a confirmation)")
			f.yes = fs.Bool("yes", false, "remove without asking")
			f.trash = fs.String("trash", "", "move entries to the trash `DIR` instead of deleting them (DIR omitted: the per-user cache directory + /modproxy/clean/trash)")
			f.auditLog = fs.String("audit-log", "", "append audit records to `FILE` (default the per-user cache directory + /modproxy/clean/audit.log)")
			f.lockTimeout = fs.Duration("lock-timeout", time.Minute, "how long to wait for an entry another process holds locked before skipping it (0: wait as long as it takes)")
			f.jsonOut = fs.Bool("json", false, "print the plan and the result as JSON")
			return func(ctx context.Context, env Env, _ []string) int { return runClean(ctx, env, f) }
		},
		subs: []*command{cleanRestoreCommand(), cleanEmptyTrashCommand()},
	}
}

func runClean(ctx context.Context, env Env, f *cleanFlags) int {
	o := f.o
	o.KeepReferenced, o.Modules, o.OlderThan = f.keep, f.mods, f.age.d
	if err := o.Validate(); err != nil {
		fmt.Fprintf(env.Stderr, "modproxy clean: %v\n", err)
		return ExitUsage
	}
	// A dry run needs neither the trash nor the audit log, so a missing
	// per-user cache directory only matters when removing.
	trashDir, auditPath, pathErr := cleanPaths(env, *f.trash, *f.auditLog)
	if trashDir != "" {
		o.Skip = append(o.Skip, trashDir)
	}

	ge, err := env.GoEnv(ctx, "GOMODCACHE", "GOVERSION", "GOTOOLCHAIN")
	if err != nil {
		fmt.Fprintf(env.Stderr, "modproxy clean: reading the module cache location: %v\n", err)
		return ExitFailure
	}
	modCache := ge["GOMODCACHE"]
	if modCache == "" {
		fmt.Fprintln(env.Stderr, "modproxy clean: go env GOMODCACHE is empty")
		return ExitFailure
	}
	o.KeepToolchains = cleanKeepToolchains(ge["GOVERSION"], ge["GOTOOLCHAIN"])
	o.Progress = progress(env.Stderr, "measuring")

	inv, err := clean.Scan(ctx, modCache)
	if err != nil {
		fmt.Fprintf(env.Stderr, "modproxy clean: %v\n", err)
		return ExitFailure
	}
	plan, err := inv.Plan(ctx, o)
	if err != nil {
		fmt.Fprintf(env.Stderr, "modproxy clean: %v\n", err)
		var oe *clean.OptionError
		if errors.As(err, &oe) {
			return ExitUsage
		}
		return ExitFailure
	}
	for _, w := range plan.Warnings {
		fmt.Fprintf(env.Stderr, "modproxy clean: warning: %s\n", w)
	}

	apply := *f.yes && !*f.dryRun
	prompt := !apply && !*f.dryRun && !*f.jsonOut && len(plan.Items) > 0 && cleanIsTerminal(env.Stdin) && cleanIsTerminal(env.Stderr)
	if pathErr != nil && (prompt || (apply && len(plan.Items) > 0)) {
		fmt.Fprintf(env.Stderr, "modproxy clean: %v\n", pathErr)
		return ExitUsage
	}
	if prompt {
		cleanWritePlan(env.Stdout, plan, false)
		apply = cleanConfirm(env.Stdin, env.Stderr, fmt.Sprintf("Remove %d entries (%s)%s? [y/N] ", len(plan.Items), units.Bytes(plan.Bytes()), cleanTrashNote(trashDir)))
		if !apply {
			fmt.Fprintln(env.Stdout, "nothing removed")
			return ExitOK
		}
	} else if !apply || len(plan.Items) == 0 {
		return cleanPrintDryRun(env, plan, *f.jsonOut, !apply)
	}

	log, err := audit.Open(auditPath)
	if err != nil {
		fmt.Fprintf(env.Stderr, "modproxy clean: %v\n", err)
		return ExitFailure
	}
	defer log.Close()
	res, err := plan.Apply(ctx, clean.ApplyOptions{
		Trash: trashDir, Audit: log, LockTimeout: *f.lockTimeout,
		Progress: progress(env.Stderr, "cleaning"),
		Waiting: func(target string) {
			limit := ""
			if *f.lockTimeout > 0 {
				limit = fmt.Sprintf(" (skipped after %s)", *f.lockTimeout)
			}
			fmt.Fprintf(env.Stderr, "modproxy clean: waiting for %s: another process holds its lock%s\n", target, limit)
		},
	})
	if res == nil {
		fmt.Fprintf(env.Stderr, "modproxy clean: %v\n", err)
		var oe *clean.OptionError
		if errors.As(err, &oe) {
			return ExitUsage
		}
		return ExitFailure
	}
	if *f.jsonOut {
		cleanWriteJSON(env.Stdout, cleanReport{Plan: plan, Totals: plan.Totals(), Bytes: res.Bytes, Result: res, AuditLog: auditPath})
	} else {
		cleanWritePlan(env.Stdout, plan, true)
		verb := "removed"
		if res.Trash != "" {
			verb = "moved to the trash"
		}
		fmt.Fprintf(env.Stdout, "%s %d entries (%s) in run %s; %d skipped, %d failed\n", verb, res.Done, units.Bytes(res.Bytes), res.RunID, res.Skipped, res.Failed)
		if res.Trash != "" {
			fmt.Fprintf(env.Stdout, "restore with: modproxy clean restore --trash %s %s\n", filepath.Dir(res.Trash), res.RunID)
		}
	}
	if err != nil {
		fmt.Fprintf(env.Stderr, "modproxy clean: %v\n", err)
		return ExitFailure
	}
	if res.Failed > 0 {
		return ExitFailure
	}
	return ExitOK
}

// cleanKeepToolchains returns the go versions whose toolchains must stay: the
// running one and a version named in GOTOOLCHAIN ("go1.22.3+auto").
func cleanKeepToolchains(goVersion, goToolchain string) []string {
	var out []string
	if v, _, _ := strings.Cut(goVersion, " "); strings.HasPrefix(v, "go1") {
		out = append(out, v)
	}
	if v, _, _ := strings.Cut(goToolchain, "+"); strings.HasPrefix(v, "go1") {
		out = append(out, v)
	}
	return out
}

func cleanTrashNote(trash string) string {
	if trash == "" {
		return ""
	}
	return " to the trash " + trash
}

func cleanConfirm(r io.Reader, w io.Writer, prompt string) bool {
	fmt.Fprint(w, prompt)
	line, _ := bufio.NewReader(r).ReadString('\n')
	switch strings.ToLower(strings.TrimSpace(line)) {
	case "y", "yes":
		return true
	}
	return false
}

// cleanReport is the --json output of clean.
type cleanReport struct {
	*clean.Plan
	DryRun   bool          `json:"dry_run"`
	Totals   []clean.Total `json:"totals"`
	Bytes    int64         `json:"bytes"`
	Result   *clean.Result `json:"result,omitempty"`
	AuditLog string        `json:"audit_log,omitempty"`
}

// cleanPrintDryRun prints a plan that is not applied: a dry run, or a plan
// with nothing in it.
func cleanPrintDryRun(env Env, plan *clean.Plan, jsonOut, dryRun bool) int {
	if jsonOut {
		cleanWriteJSON(env.Stdout, cleanReport{Plan: plan, DryRun: dryRun, Totals: plan.Totals(), Bytes: plan.Bytes()})
		return ExitOK
	}
	cleanWritePlan(env.Stdout, plan, false)
	switch {
	case len(plan.Items) == 0:
		fmt.Fprintln(env.Stdout, "nothing to remove")
	default:
		fmt.Fprintln(env.Stdout, "dry run: nothing was removed; give --yes to remove these entries")
	}
	return ExitOK
}

func cleanWriteJSON(w io.Writer, v any) {
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	_ = enc.Encode(v)
}

// cleanWritePlan prints one line per item, then the totals per category.
func cleanWritePlan(w io.Writer, plan *clean.Plan, applied bool) {
	fmt.Fprintf(w, "module cache %s\n", plan.ModCache)
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	if len(plan.Items) > 0 {
		if applied {
			fmt.Fprint(tw, "STATUS\t")
		}
		fmt.Fprintln(tw, "CATEGORY\tACTION\tSIZE\tAGE\tTARGET\tREASON")
		now := time.Now()
		for _, it := range plan.Items {
			if applied {
				fmt.Fprintf(tw, "%s\t", it.Status)
			}
			age := "-"
			if !it.ModTime.IsZero() {
				age = clean.FormatAge(now.Sub(it.ModTime))
			}
			reason := it.Reason
			if it.Error != "" {
				reason += " (" + it.Error + ")"
			}
			fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\n", it.Category, it.Action, units.Bytes(it.Bytes), age, it.Target, reason)
		}
		fmt.Fprintln(tw)
	}
	fmt.Fprintln(tw, "CATEGORY\tENTRIES\tSIZE")
	var n int
	var total int64
	for _, t := range plan.Totals() {
		if t.Category == clean.CategoryOther && t.Items == 0 {
			continue
		}
		fmt.Fprintf(tw, "%s\t%d\t%s\n", t.Category, t.Items, units.Bytes(t.Bytes))
		n += t.Items
		total += t.Bytes
	}
	fmt.Fprintf(tw, "total\t%d\t%s\n", n, units.Bytes(total))
	_ = tw.Flush()
	if plan.ReferenceFiles > 0 {
		fmt.Fprintf(w, "kept %d module versions (%d reference files read)\n", plan.Kept, plan.ReferenceFiles)
	} else {
		fmt.Fprintf(w, "kept %d module versions\n", plan.Kept)
	}
}

const cleanRestoreHelp = `Moves the entries of a "modproxy clean --trash" run back into the module
cache they came from: the newest run, or run ID. Each module version is
restored while holding its lock file, .info, .mod, .zip and .ziphash first
and the extracted tree last, and the tree only when its .ziphash is in
place; the module's @v/list is rewritten. A file whose place was taken (the
go command downloaded it again meanwhile) stays in the trash and is
reported. A run whose every file went back is deleted from the trash.
Every restored entry is recorded in the audit log.

Exit status: 0 when everything was restored (or listed), 1 when something
stayed in the trash or failed, 2 on a usage error.`

// cleanTrashFlags defines --trash and --audit-log of the trash commands.
func cleanTrashFlags(fs *flag.FlagSet) (trash, auditLog *string) {
	trash = fs.String("trash", "", "the trash `DIR` (default the per-user cache directory + /modproxy/clean/trash)")
	auditLog = fs.String("audit-log", "", "append audit records to `FILE` (default the per-user cache directory + /modproxy/clean/audit.log)")
	return trash, auditLog
}

func cleanRestoreCommand() *command {
	return &command{
		name: "restore", args: "[ID]", maxArgs: 1,
		summary: "move a clean --trash run back into the module cache", help: cleanRestoreHelp,
		rewrite: cleanOptionalTrash,
		setup: func(fs *flag.FlagSet) runFunc {
			trash, auditLog := cleanTrashFlags(fs)
			list := fs.Bool("list", false, "list the runs in the trash instead of restoring")
			lockTimeout := fs.Duration("lock-timeout", time.Minute, "how long to wait for a version another process holds locked before leaving it in the trash (0: as long as it takes)")
			jsonOut := fs.Bool("json", false, "print the result as JSON")
			return func(ctx context.Context, env Env, args []string) int {
				if *list && len(args) > 0 {
					return usageError(env, "modproxy clean restore", "unexpected arguments: --list takes no ID")
				}
				return runCleanRestore(ctx, env, args, *trash, *auditLog, *list, *jsonOut, *lockTimeout)
			}
		},
	}
}

func runCleanRestore(ctx context.Context, env Env, args []string, trash, auditLog string, list, jsonOut bool, lockTimeout time.Duration) int {
	if trash == "" {
		trash = cleanTrashDefault
	}
	trashDir, auditPath, err := cleanPaths(env, trash, auditLog)
	if err != nil {
		fmt.Fprintf(env.Stderr, "modproxy clean restore: %v\n", err)
		return ExitUsage
	}
	if list {
		return cleanListTrash(env, trashDir, jsonOut)
	}
	log, err := audit.Open(auditPath)
	if err != nil {
		fmt.Fprintf(env.Stderr, "modproxy clean restore: %v\n", err)
		return ExitFailure
	}
	defer log.Close()
	res, err := clean.Restore(ctx, trashDir, firstArg(args), clean.RestoreOptions{
		Audit: log, LockTimeout: lockTimeout,
		Waiting: func(target string) {
			fmt.Fprintf(env.Stderr, "modproxy clean restore: waiting for %s: another process holds its lock\n", target)
		},
	})
	if res == nil {
		fmt.Fprintf(env.Stderr, "modproxy clean restore: %v\n", err)
		var oe *clean.OptionError
		if errors.As(err, &oe) {
			return ExitUsage
		}
		return ExitFailure
	}
	code := ExitOK
	for _, it := range res.Items {
		if it.Status != "restored" || it.Error != "" {
			code = ExitFailure
		}
	}
	if jsonOut {
		cleanWriteJSON(env.Stdout, res)
	} else {
		restored := 0
		for _, it := range res.Items {
			if it.Status == "restored" {
				restored++
				continue
			}
			fmt.Fprintf(env.Stdout, "%s %s", it.Status, it.Target)
			if it.Error != "" {
				fmt.Fprintf(env.Stdout, ": %s", it.Error)
			}
			fmt.Fprintln(env.Stdout)
			for _, l := range it.Left {
				fmt.Fprintf(env.Stdout, "    left in the trash: %s\n", l)
			}
		}
		fmt.Fprintf(env.Stdout, "restored %d of %d entries of run %s into %s\n", restored, len(res.Items), res.RunID, res.ModCache)
		if !res.Emptied {
			fmt.Fprintf(env.Stdout, "the run stays in the trash: %s\n", filepath.Join(trashDir, res.RunID))
		}
	}
	if err != nil {
		fmt.Fprintf(env.Stderr, "modproxy clean restore: %v\n", err)
		return ExitFailure
	}
	return code
}

func cleanListTrash(env Env, trash string, jsonOut bool) int {
	runs, err := clean.TrashRuns(trash)
	if err != nil {
		fmt.Fprintf(env.Stderr, "modproxy clean: %v\n", err)
		return ExitFailure
	}
	if jsonOut {
		if runs == nil {
			runs = []clean.TrashRun{}
		}
		cleanWriteJSON(env.Stdout, runs)
		return ExitOK
	}
	if len(runs) == 0 {
		fmt.Fprintf(env.Stdout, "the trash %s is empty\n", trash)
		return ExitOK
	}
	tw := tabwriter.NewWriter(env.Stdout, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "ID\tTIME\tENTRIES\tSIZE\tMODULE CACHE")
	for _, r := range runs {
		fmt.Fprintf(tw, "%s\t%s\t%d\t%s\t%s\n", r.ID, r.Time.Local().Format(time.DateTime), r.Items, units.Bytes(r.Bytes), r.ModCache)
	}
	_ = tw.Flush()
	return ExitOK
}

const cleanEmptyTrashHelp = `Deletes runs of "modproxy clean --trash" from the trash for good: the runs
named, or every run. Without --yes it only lists what it would delete. The
deletion is recorded in the audit log.

Exit status: 0 on success, 1 on failure, 2 on a usage error.`

func cleanEmptyTrashCommand() *command {
	return &command{
		name: "empty-trash", args: "[ID...]", maxArgs: -1,
		summary: "delete clean --trash runs for good", help: cleanEmptyTrashHelp,
		rewrite: cleanOptionalTrash,
		setup: func(fs *flag.FlagSet) runFunc {
			trash, auditLog := cleanTrashFlags(fs)
			yes := fs.Bool("yes", false, "delete (without it, only list)")
			jsonOut := fs.Bool("json", false, "print the result as JSON")
			return func(_ context.Context, env Env, ids []string) int {
				return runCleanEmptyTrash(env, ids, *trash, *auditLog, *yes, *jsonOut)
			}
		},
	}
}

func runCleanEmptyTrash(env Env, ids []string, trash, auditLog string, yes, jsonOut bool) int {
	if trash == "" {
		trash = cleanTrashDefault
	}
	trashDir, auditPath, err := cleanPaths(env, trash, auditLog)
	if err != nil {
		fmt.Fprintf(env.Stderr, "modproxy clean empty-trash: %v\n", err)
		return ExitUsage
	}
	if !yes {
		code := cleanListTrash(env, trashDir, jsonOut)
		if !jsonOut && code == ExitOK {
			fmt.Fprintln(env.Stdout, "dry run: nothing was deleted; give --yes to delete")
		}
		return code
	}
	freed, err := clean.EmptyTrash(trashDir, ids)
	if aerr := cleanAudit(auditPath, audit.Event{Actor: "clean", Action: "empty-trash", Target: trashDir, Reason: "runs: " + cleanOrAll(ids), Bytes: freed}); aerr != nil && err == nil {
		err = aerr
	}
	if jsonOut {
		cleanWriteJSON(env.Stdout, map[string]any{"trash": trashDir, "freed": freed, "error": cleanErrString(err)})
	} else {
		fmt.Fprintf(env.Stdout, "deleted %s from the trash %s\n", units.Bytes(freed), trashDir)
	}
	if err != nil {
		fmt.Fprintf(env.Stderr, "modproxy clean empty-trash: %v\n", err)
		return ExitFailure
	}
	return ExitOK
}

func cleanAudit(path string, e audit.Event) error {
	log, err := audit.Open(path)
	if err != nil {
		return err
	}
	defer log.Close()
	return log.Record(e)
}

func cleanOrAll(ids []string) string {
	if len(ids) == 0 {
		return "all"
	}
	return strings.Join(ids, ", ")
}

func cleanErrString(err error) string {
	if err == nil {
		return ""
	}
	return err.Error()
}

// firstArg returns args[0], or "" without arguments.
func firstArg(args []string) string {
	if len(args) == 0 {
		return ""
	}
	return args[0]
}
