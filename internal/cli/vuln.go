package cli

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"strings"
	"time"

	"github.com/modproxy/modproxy/internal/admin"
	"github.com/modproxy/modproxy/internal/app"
	"github.com/modproxy/modproxy/internal/config"
)

const vulnHelp = `Manages the Go vulnerability database that modproxy serves at /vuln/
(govulncheck -db http://HOST:PORT/vuln), mirrored from vuln.source or
imported offline.`

const vulnImportHelp = `Imports a Go vulnerability database from its zip archive (the database's
files: index/db.json, index/modules.json, ID/ID.json) into the cache
directory, for sites without access to a database server. Every file is
checked first (zip checksums, JSON, every entry the index names present
and parsing, each entry's id its file name); a corrupt archive or entry is
refused with the reason and changes nothing. The new database becomes
visible at once and whole; a running server serves it after its next
refresh or reload (vuln.refresh).

Exit status: 0 when imported, 1 when refused or failed, 2 on a usage or
configuration error.`

const vulnAffectedHelp = `Answers "are we exposed": for an advisory (GO-YYYY-NNNN), the cached
versions of the modules it affects and when each was last downloaded;
without an ID, every advisory that affects a cached version. The identity
that last downloaded a version is not recorded yet (empty).

` + runningServerHelp + `

Exit status: 0 on success (also when nothing is affected), 1 on failure,
2 on a usage error or an ID the database does not hold.`

func vulnCommand() *command {
	return &command{
		name: "vuln", summary: "import the vulnerability database; list who is affected by an advisory", help: vulnHelp,
		subs: []*command{{
			name: "import", args: "FILE", minArgs: 1, maxArgs: 1, summary: "import the vulnerability database from its zip archive",
			help: vulnImportHelp,
			setup: func(fs *flag.FlagSet) runFunc {
				cf := addConfigFlags(fs, false)
				return func(ctx context.Context, env Env, args []string) int { return runVulnImport(ctx, env, cf, args[0]) }
			},
		}, {
			name: "affected", args: "[ID]", maxArgs: 1, summary: "list the cached versions an advisory affects",
			help: vulnAffectedHelp,
			setup: func(fs *flag.FlagSet) runFunc {
				cf := addConfigFlags(fs, false)
				jsonOut := fs.Bool("json", false, "print JSON")
				return func(ctx context.Context, env Env, args []string) int {
					return runVulnAffected(ctx, env, cf, args, *jsonOut)
				}
			},
		}},
	}
}

func runVulnImport(ctx context.Context, env Env, cf *configFlags, file string) int {
	const cmd = "modproxy vuln import"
	cfg, code := loadCacheConfig(ctx, env, cf, cmd)
	if code != ExitOK {
		return code
	}
	log := app.NewLogger(config.Log{Format: cfg.Log.Format, Level: "warn"}, env.Stderr)
	st, err := app.VulnImport(ctx, cfg, file, log)
	if err != nil {
		fmt.Fprintf(env.Stderr, "%s: %v\n", cmd, err)
		return ExitFailure
	}
	fmt.Fprintf(env.Stdout, "imported %d advisories (database modified %s) into %s as generation %s\n",
		st.Entries, st.Modified.UTC().Format(time.RFC3339), cfg.CacheDir, st.Generation)
	return ExitOK
}

// advisoryAPI is what vuln affected asks: a running server's admin API or
// a server of this process.
type advisoryAPI interface {
	Advisories(ctx context.Context) (admin.Advisories, error)
	Advisory(ctx context.Context, id string) (admin.Advisory, error)
}

func runVulnAffected(ctx context.Context, env Env, cf *configFlags, args []string, jsonOut bool) int {
	return withCacheWrite(ctx, env, cf, "modproxy vuln affected", jsonOut, func(c cacheAPI) (any, error) {
		var api advisoryAPI
		switch c := c.(type) {
		case *admin.Client:
			api = c
		case localCache:
			api, _ = c.b.(admin.AdvisoryBackend)
		}
		if api == nil {
			return nil, errors.New("this server cannot answer for advisories")
		}
		if len(args) == 1 {
			return api.Advisory(ctx, args[0])
		}
		return api.Advisories(ctx)
	}, writeAdvisories)
}

// writeAdvisories is the text output of vuln affected.
func writeAdvisories(w io.Writer, out any) {
	switch v := out.(type) {
	case admin.Advisory:
		writeAdvisory(w, v)
	case admin.Advisories:
		if v.Database.Generation == "" {
			fmt.Fprintln(w, "no vulnerability database (set vuln.source, or modproxy vuln import FILE)")
			return
		}
		fmt.Fprintf(w, "vulnerability database: %d advisories, modified %s, updated %s\n",
			v.Database.Entries, v.Database.Modified.UTC().Format(time.RFC3339), v.Database.LastUpdate.UTC().Format(time.RFC3339))
		if len(v.Advisories) == 0 {
			fmt.Fprintln(w, "no cached version is affected by any advisory")
		}
		for _, a := range v.Advisories {
			writeAdvisory(w, a)
		}
	}
}

func writeAdvisory(w io.Writer, a admin.Advisory) {
	title := a.ID
	if len(a.Aliases) > 0 {
		title += " (" + strings.Join(a.Aliases, ", ") + ")"
	}
	if a.Summary != "" {
		title += ": " + a.Summary
	}
	fmt.Fprintln(w, title)
	for _, m := range a.Modules {
		fmt.Fprintf(w, "  affects %s %s\n", m.Module, strings.Join(m.Ranges, ", "))
	}
	if len(a.Versions) == 0 {
		fmt.Fprintln(w, "  no affected version is cached")
	}
	for _, v := range a.Versions {
		last := "never downloaded"
		if !v.LastDownload.IsZero() && v.LastDownload.Unix() > 0 {
			last = "last downloaded " + v.LastDownload.UTC().Format(time.RFC3339)
		}
		if v.Identity != "" {
			last += " by " + v.Identity
		}
		fmt.Fprintf(w, "  cached  %s %s  %s\n", v.Module, v.Version, last)
	}
}
