package cli

import (
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"os"
	"time"

	"github.com/schollz/progressbar/v3"

	"github.com/modproxy/modproxy/internal/app"
	"github.com/modproxy/modproxy/internal/scrub"
	"github.com/modproxy/modproxy/internal/units"
)

const verifyHelp = `Re-hashes every module zip and go.mod in a modproxy cache directory and
compares each with the h1: hash recorded when it was admitted and with the
checksum database record cached beside it; objects of hosted modules are
compared with the private log of published versions too, whose records
are checked against its signed tree head. It works offline: nothing is
fetched. Every mismatch or unreadable object is reported.

With --repair, bad objects are moved to the quarantine directory (and
audited), so that the server fetches and verifies them again on the next
request. The server may keep running meanwhile.

Exit status: 0 when every object is good, 1 when problems were found (even
if repaired) or the scrub failed, 2 on a usage or configuration error.`

func verifyCommand() *command {
	return &command{
		name: "verify", summary: "re-hash the cache against recorded and checksum database hashes", help: verifyHelp,
		setup: func(fs *flag.FlagSet) runFunc {
			cf := addConfigFlags(fs, false)
			repair := fs.Bool("repair", false, "move bad objects to quarantine so that they are fetched again")
			jsonOut := fs.Bool("json", false, "print the report as JSON")
			return func(ctx context.Context, env Env, _ []string) int { return runVerify(ctx, env, cf, *repair, *jsonOut) }
		},
	}
}

func runVerify(ctx context.Context, env Env, cf *configFlags, repair, jsonOut bool) int {
	cf.noUpstream(env)
	cfg, err := cf.load(ctx, env)
	if err != nil {
		fmt.Fprintf(env.Stderr, "modproxy verify: %v\n", err)
		return ExitUsage
	}
	if st, err := os.Stat(cfg.CacheDir); err != nil || !st.IsDir() {
		fmt.Fprintf(env.Stderr, "modproxy verify: cache directory %s: not found\n", cfg.CacheDir)
		return ExitUsage
	}
	rep, err := app.Scrub(ctx, cfg, repair, progress(env.Stderr, "verifying"))
	if err != nil {
		fmt.Fprintf(env.Stderr, "modproxy verify: %v\n", err)
		return ExitFailure
	}
	if jsonOut {
		enc := json.NewEncoder(env.Stdout)
		enc.SetIndent("", "  ")
		_ = enc.Encode(rep)
	} else {
		writeScrubReport(env.Stdout, rep)
	}
	if len(rep.Problems) > 0 {
		return ExitFailure
	}
	return ExitOK
}

func writeScrubReport(w io.Writer, rep scrub.Report) {
	for _, p := range rep.Problems {
		fmt.Fprintf(w, "BAD %s: %s", p.Key, p.Problem)
		if p.Detail != "" {
			fmt.Fprintf(w, " (%s)", p.Detail)
		}
		if p.Got != "" {
			fmt.Fprintf(w, "\n    content   %s", p.Got)
		}
		if p.Recorded != "" {
			fmt.Fprintf(w, "\n    recorded  %s", p.Recorded)
		}
		if p.Database != "" {
			fmt.Fprintf(w, "\n    database  %s", p.Database)
		}
		if p.Log != "" {
			fmt.Fprintf(w, "\n    log       %s", p.Log)
		}
		if p.Repaired != "" {
			fmt.Fprintf(w, "\n    moved to quarantine: %s", p.Repaired)
		}
		fmt.Fprintln(w)
	}
	fmt.Fprintf(w, "checked %d objects (%s): %d problems\n", rep.Checked, units.Bytes(rep.Bytes), len(rep.Problems))
}

// progress returns a progress callback: a bar on a terminal, a line every
// few seconds otherwise.
func progress(w io.Writer, what string) func(done, total int) {
	if f, ok := w.(*os.File); ok {
		if st, err := f.Stat(); err == nil && st.Mode()&os.ModeCharDevice != 0 {
			var bar *progressbar.ProgressBar
			return func(done, total int) {
				if bar == nil {
					bar = progressbar.NewOptions(total, progressbar.OptionSetWriter(w), progressbar.OptionSetDescription(what),
						progressbar.OptionShowCount(), progressbar.OptionClearOnFinish(), progressbar.OptionThrottle(100*time.Millisecond))
				}
				_ = bar.Set(done)
			}
		}
	}
	last := time.Now()
	return func(done, total int) {
		if time.Since(last) >= 5*time.Second || (done == total && total >= 1000) {
			last = time.Now()
			fmt.Fprintf(w, "%s: %d/%d\n", what, done, total)
		}
	}
}
