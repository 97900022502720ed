package cli

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"os"
	"path/filepath"

	"github.com/modproxy/modproxy/internal/app"
	"github.com/modproxy/modproxy/internal/bundle"
	"github.com/modproxy/modproxy/internal/config"
	"github.com/modproxy/modproxy/internal/units"
)

const exportHelp = `Writes a bundle (one tar archive) for an air-gapped or offline modproxy:
the selected module versions' .info, .mod and .zip, the checksum database
records that vouch for them, the proof tiles and the signed tree head they
are proved against, the vulnerability mirror (vuln/, when present), the
toolchains asked for with --toolchain, and a manifest with the size and
SHA-256 of every member. Import it on the inside with 'modproxy import'.

Select with one of:
  --from PATH    the versions the go.mod, go.sum, go.work files (or the
                 directories walked for them) reference; repeatable
  --namespace NS every cached version of the modules namespace NS served
  --all          every cached version

--since EARLIER writes only what the earlier bundle lacked (its manifest
tells); the inside imports both in order.

It only reads the cache, so the server may keep running. Private modules
(verify.private) have no checksum database record: they are included and
marked private in the manifest, and the inside admits them only where its
own verify.private matches them.

Exit status: 0 when the bundle was written, 1 when it could not be (a
selected file not cached, a proof the cache cannot make), 2 on a usage
or configuration error.`

const importHelp = `Verifies a bundle written by 'modproxy export' and admits it into the cache:
every member's size and SHA-256 against the manifest, every module's h1:
hash (zip and go.mod) against the bundle's checksum database records, the
records against the bundle's signed tree head (proof tiles, the database's
key as serve finds it), and that tree head against the one this cache
already trusts: an inconsistent one (a forked database) is refused, a newer
consistent one replaces it. Only then are objects admitted, each with the
store's crash-safe writes; an import that is interrupted leaves whole
objects and can be run again.

An offline server (offline = true) then serves the modules and the
checksum database (/sumdb/NAME/lookup, tiles, latest) from the imported
records, so clients verify with the default GOSUMDB.

--dry-run verifies and lists what would change, changing nothing.

Exit status: 0 when imported (or, dry, verified), 1 when refused or
failed (nothing changed by a refusal), 2 on a usage or configuration error.`

func exportCommand() *command {
	return &command{
		name: "export", args: "[PATH...]", maxArgs: -1, summary: "write a verified bundle of cached modules for an air-gapped site", help: exportHelp,
		setup: func(fs *flag.FlagSet) runFunc {
			cf := addConfigFlags(fs, false)
			var from, toolchains listFlags
			fs.Var(&from, "from", "go.sum, go.mod, go.work `path` or directory whose versions to export (repeatable)")
			fs.Var(&toolchains, "toolchain", "include the mirrored toolchain `goX.Y.Z` (repeatable)")
			ns := fs.String("namespace", "", "export every cached version of the modules `namespace` served")
			all := fs.Bool("all", false, "export every cached version")
			since := fs.String("since", "", "write only what the earlier `bundle` lacked")
			out := fs.String("o", "", "output `file` (required)")
			return func(ctx context.Context, env Env, args []string) int {
				return runExport(ctx, env, cf, app.ExportRequest{From: append([]string(from), args...), Namespace: *ns, All: *all, Toolchains: toolchains}, *since, *out)
			}
		},
	}
}

func runExport(ctx context.Context, env Env, cf *configFlags, req app.ExportRequest, since, out string) int {
	n := 0
	for _, b := range []bool{len(req.From) > 0, req.Namespace != "", req.All} {
		if b {
			n++
		}
	}
	if n != 1 || out == "" {
		fmt.Fprintln(env.Stderr, "modproxy export: want -o FILE and one of --from PATH, --namespace NS, --all; run 'modproxy export --help'")
		return ExitUsage
	}
	cf.noUpstream(env)
	cfg, err := cf.load(ctx, env)
	if err != nil {
		fmt.Fprintf(env.Stderr, "modproxy export: %v\n", err)
		return ExitUsage
	}
	if code := needCacheDir(env, "export", cfg); code != ExitOK {
		return code
	}
	if since != "" {
		f, err := os.Open(since)
		if err != nil {
			fmt.Fprintf(env.Stderr, "modproxy export: --since: %v\n", err)
			return ExitUsage
		}
		req.Since, err = bundle.ReadManifest(f)
		f.Close()
		if err != nil {
			fmt.Fprintf(env.Stderr, "modproxy export: --since %s: %v\n", since, err)
			return ExitUsage
		}
	}
	req.Progress = progress(env.Stderr, "exporting")
	// Written next to the output and renamed: a failed export leaves no
	// partial bundle under the name.
	tmp, err := os.CreateTemp(filepath.Dir(out), filepath.Base(out)+".tmp-*")
	if err != nil {
		fmt.Fprintf(env.Stderr, "modproxy export: %v\n", err)
		return ExitFailure
	}
	defer os.Remove(tmp.Name())
	man, err := app.Export(ctx, cfg, req, tmp)
	if err == nil {
		err = tmp.Sync()
	}
	if cerr := tmp.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		err = os.Rename(tmp.Name(), out)
	}
	if err != nil {
		fmt.Fprintf(env.Stderr, "modproxy export: %v\n", err)
		var ce *config.Error
		if errors.As(err, &ce) {
			return ExitUsage
		}
		return ExitFailure
	}
	var size int64
	private := 0
	for _, m := range man.Members {
		size += m.Size
	}
	for _, m := range man.Modules {
		if m.Private {
			private++
		}
	}
	fmt.Fprintf(env.Stdout, "wrote %s: %d module versions (%d private, without checksum records), %d objects, %s\n", out, len(man.Modules), private, len(man.Members), units.Bytes(size))
	for _, db := range man.Databases {
		fmt.Fprintf(env.Stdout, "checksum database %s: records proved against its signed tree head of size %d\n", db.Name, db.Size)
	}
	return ExitOK
}

func importCommand() *command {
	return &command{
		name: "import", summary: "verify a bundle and admit it into the cache", help: importHelp, args: "FILE", minArgs: 1, maxArgs: 1,
		setup: func(fs *flag.FlagSet) runFunc {
			cf := addConfigFlags(fs, false)
			dry := fs.Bool("dry-run", false, "verify and list what would change, changing nothing")
			return func(ctx context.Context, env Env, args []string) int {
				return runImport(ctx, env, cf, args[0], *dry)
			}
		},
	}
}

func runImport(ctx context.Context, env Env, cf *configFlags, file string, dry bool) int {
	cf.noUpstream(env)
	cfg, err := cf.load(ctx, env)
	if err != nil {
		fmt.Fprintf(env.Stderr, "modproxy import: %v\n", err)
		return ExitUsage
	}
	f, err := os.Open(file)
	if err != nil {
		fmt.Fprintf(env.Stderr, "modproxy import: %v\n", err)
		return ExitUsage
	}
	defer f.Close()
	rep, warning, err := app.Import(ctx, cfg, f, dry, progress(env.Stderr, "importing"))
	if err != nil {
		fmt.Fprintf(env.Stderr, "modproxy import: refused, nothing changed: %v\n", err)
		var ce *config.Error
		if errors.As(err, &ce) {
			return ExitUsage
		}
		return ExitFailure
	}
	verb := "imported"
	if dry {
		verb = "would import"
		for _, c := range rep.Changes {
			fmt.Fprintf(env.Stdout, "%s %s\n", c.Action, c.Key)
		}
	}
	fmt.Fprintf(env.Stdout, "verified %d module versions (%d private); %s %d objects, %d already present\n", rep.Modules, rep.Private, verb, len(rep.Changes), rep.Unchanged)
	for name, n := range rep.TreeHeads {
		fmt.Fprintf(env.Stdout, "checksum database %s: trusted tree head advanced to size %d\n", name, n)
	}
	if warning != "" {
		fmt.Fprintf(env.Stderr, "modproxy import: warning: %s\n", warning)
	}
	return ExitOK
}

// needCacheDir reports a cache directory that does not exist.
func needCacheDir(env Env, cmd string, cfg config.Config) int {
	if st, err := os.Stat(cfg.CacheDir); err != nil || !st.IsDir() {
		fmt.Fprintf(env.Stderr, "modproxy %s: cache directory %s: not found\n", cmd, cfg.CacheDir)
		return ExitUsage
	}
	return ExitOK
}
