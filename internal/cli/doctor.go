package cli

import (
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"os"
	"strings"
	"time"

	"github.com/modproxy/modproxy/internal/doctor"
	"github.com/modproxy/modproxy/internal/doctor/explain"
	"github.com/modproxy/modproxy/internal/goauth"
	"github.com/modproxy/modproxy/internal/goenv"
)

const doctorHelp = `Diagnoses a module download setup. It reads the effective "go env" (never
guessing the go command's defaults) and reports findings, each with a
status (ok, warning, problem), what was seen and the fix:

  - GOPROXY: every entry, "," (fall through on 404/410 only) versus "|"
    (fall through on any error, timeouts included), direct and off, typos,
    white space, plain http:// to other hosts, a chain without fallback;
  - GOSUMDB (off, custom key, how it is reached); GOPRIVATE, GONOPROXY,
    GONOSUMDB and GOINSECURE mistakes ("," not ";", patterns so broad that
    verification is off for public modules) and private paths that would
    leak to a proxy or a checksum database; hosts one edit away from a
    public proxy's; GOFLAGS, GOTOOLCHAIN (a toolchain that cannot be
    downloaded breaks every go command: doctor then reads go env with
    GOTOOLCHAIN=local and says why), GOAUTH and the netrc file;
  - each proxy of the chain: DNS, TCP, TLS (unknown authority, expiry),
    HTTP status and latency of a small canary request (@v/list of the
    --canary module), protocol conformance and /sumdb/NAME/supported;
    HTTPS_PROXY / NO_PROXY are honoured and reported; the credentials
    the go command would send (the URL's, netrc's, or the token saved by
    "modproxy login" when GOAUTH runs "modproxy auth"; never printed), and
    for a proxy answering 401 which source could supply them and whether
    they were accepted;
  - the module cache (GOMODCACHE): size, writable or not, leftover .partial
    and temporary files, invalid .ziphash files, trees without .ziphash,
    extracted trees edited since extraction (go mod verify's check, for the
    trees with writable files or late changes);
  - with --module PATH[@VERSION]: whether it is cached (and its tree
    unedited; a cached version hides GOPROXY changes), which proxy and
    checksum database a fresh download would use, and whether the path
    looks private while the go command would send it to a public service;
  - without --module, the current project (go env GOWORK, else GOMOD and
    its go.sum): every module version they reference is asked for along
    the GOPROXY chain as a machine with an empty module cache would ask
    (its .info, or its .mod when only its go.mod is needed; 8 at a time,
    at most 2000), so that a version only your module cache still has
    ("it builds on my machine, CI fails") is a problem, marked
    "[cached here]"; paths that look private are judged as below, never
    sent to a public proxy, and reported when the go command would leak
    them.

Public services are the proxies of the go command's default GOPROXY and its
default checksum database, as "go env" reports them without the go env
file and without GOPROXY and GOSUMDB. A module path looks private when a
GOPRIVATE, GONOPROXY, GONOSUMDB, GOINSECURE or --private pattern matches it,
when its host is a private address or under a name that is never public
(.internal, .corp, .lan, .test, ...), or when its host resolves only to
private addresses or does not resolve at all (not counted behind an HTTP
proxy; only the host is looked up, with the system resolver). Doctor never sends such a path to a public service, and
to the other proxies only with --probe-private.

Nothing is changed, except that a temporary file is created and removed in
the module cache to learn whether it is writable.

Exit status: 0 when no problem was found (warnings alone give 0), 1 when
at least one problem was found or go env could not be read, 2 on a usage
error.

"modproxy doctor explain" explains the module download errors in go
command output (a build or CI log).`

const doctorExplainHelp = `Reads go command output from FILE, or from standard input when FILE is
absent or "-", finds every module download error in it and explains each:
the cause, the fix and, where one exists, the exact command to run.

  go build ./... 2>&1 | modproxy doctor explain
  modproxy doctor explain ci.log

Exit status: 0 when the input was read, whether or not errors were found
in it (an explanation, not a check), 1 when the input cannot be read, 2 on
a usage error.`

// doctorFlags are doctor's flags.
type doctorFlags struct {
	jsonOut, offline, probePrivate, quiet *bool
	timeout, slow                         *time.Duration
	module, canary, private               *string
}

func doctorCommand() *command {
	return &command{
		name: "doctor", summary: "diagnose the module download setup and the project's requirements", help: doctorHelp,
		setup: func(fs *flag.FlagSet) runFunc {
			f := &doctorFlags{}
			f.jsonOut = fs.Bool("json", false, "print the report as JSON")
			f.offline = fs.Bool("offline", false, "skip every network probe")
			f.timeout = fs.Duration("timeout", doctor.DefaultTimeout, "time limit of each network probe")
			f.slow = fs.Duration("slow", doctor.DefaultSlowResponse, "report a proxy as slow above this latency")
			f.module = fs.String("module", "", "also check module `PATH[@VERSION]`: cached locally? which proxy and checksum database would serve it?")
			f.canary = fs.String("canary", doctor.DefaultCanary, "module `path` whose @v/list is requested from each proxy")
			f.private = fs.String("private", "", "module path `patterns` (GOPRIVATE syntax) you know to be private, besides GOPRIVATE's")
			f.probePrivate = fs.Bool("probe-private", false, "ask the proxies that are not public for a module that looks private (--module, or the project's)")
			f.quiet = fs.Bool("quiet", false, "print only warnings and problems")
			return func(ctx context.Context, env Env, _ []string) int { return runDoctor(ctx, env, f) }
		},
		subs: []*command{{
			name: "explain", args: "[FILE | -]", maxArgs: 1,
			summary: "explain the module download errors in go command output", help: doctorExplainHelp,
			setup: func(fs *flag.FlagSet) runFunc {
				jsonOut := fs.Bool("json", false, "print the findings as JSON")
				list := fs.Bool("list", false, "print the catalog of recognised errors and exit")
				return func(_ context.Context, env Env, args []string) int {
					return runDoctorExplain(env, args, *jsonOut, *list)
				}
			},
		}},
	}
}

// runDoctor implements "modproxy doctor".
func runDoctor(ctx context.Context, env Env, f *doctorFlags) int {
	if *f.timeout <= 0 || *f.slow <= 0 {
		fmt.Fprintln(env.Stderr, "modproxy doctor: --timeout and --slow must be positive")
		return ExitUsage
	}
	opts := doctor.Options{
		GoEnv:        env.GoEnv,
		GoEnvWith:    doctor.GoEnvCommand,
		PrivateHints: *f.private,
		ProbePrivate: *f.probePrivate,
		LookupEnv:    env.LookupEnv,
		Offline:      *f.offline,
		Timeout:      *f.timeout,
		SlowResponse: *f.slow,
		Canary:       *f.canary,
		SumDBKey:     goenv.SumDBKey,
	}
	if path, err := goauth.DefaultPath(); err == nil {
		opts.ModproxyAuth = savedToken(path)
	}
	if err := doctor.CheckCanary(*f.canary); err != nil {
		fmt.Fprintf(env.Stderr, "modproxy doctor: --canary: %v\n", err)
		return ExitUsage
	}
	if *f.module != "" {
		m, err := doctor.ParseModule(*f.module)
		if err != nil {
			fmt.Fprintf(env.Stderr, "modproxy doctor: --module: %v\n", err)
			return ExitUsage
		}
		opts.Module = m
	}
	rep, err := doctor.Run(ctx, opts)
	if err != nil {
		fmt.Fprintf(env.Stderr, "modproxy doctor: %v\n", err)
		fmt.Fprintln(env.Stderr, "modproxy doctor needs a working \"go env\" (it failed with GOTOOLCHAIN=local too): is the go command in PATH?")
		return ExitFailure
	}
	if *f.jsonOut {
		enc := json.NewEncoder(env.Stdout)
		enc.SetIndent("", "  ")
		_ = enc.Encode(rep)
	} else {
		writeDoctorReport(env.Stdout, rep, *f.quiet)
	}
	if rep.HasProblems() {
		return ExitFailure
	}
	return ExitOK
}

// writeDoctorReport prints findings for humans: a status tag, the title
// and the check ID, then what was seen and the fix, indented.
func writeDoctorReport(w io.Writer, rep doctor.Report, quiet bool) {
	tags := map[doctor.Status]string{doctor.OK: "ok", doctor.Warning: "WARNING", doctor.Problem: "PROBLEM"}
	for _, f := range rep.Findings {
		if quiet && f.Status == doctor.OK {
			continue
		}
		fmt.Fprintf(w, "%-8s %s  [%s]\n", tags[f.Status], f.Title, f.ID)
		if f.Seen != "" {
			fmt.Fprintf(w, "%s\n", doctorIndent(f.Seen, "         "))
		}
		if f.Fix != "" {
			fmt.Fprintf(w, "%s\n", doctorIndent("fix: "+f.Fix, "         "))
		}
	}
	s := rep.Summary
	fmt.Fprintf(w, "\n%d ok, %d warning%s, %d problem%s\n", s.OK, s.Warnings, doctorPlural(s.Warnings), s.Problems, doctorPlural(s.Problems))
}

func doctorIndent(s, prefix string) string {
	return prefix + strings.ReplaceAll(strings.TrimRight(s, "\n"), "\n", "\n"+prefix)
}

func doctorPlural(n int) string {
	if n == 1 {
		return ""
	}
	return "s"
}

func runDoctorExplain(env Env, pos []string, jsonOut, list bool) int {
	if list {
		if len(pos) > 0 {
			fmt.Fprintln(env.Stderr, "modproxy doctor explain: --list takes no FILE")
			return ExitUsage
		}
		return doctorWriteCatalog(env.Stdout, jsonOut)
	}
	in, name := env.Stdin, "standard input"
	if len(pos) == 1 && pos[0] != "-" {
		f, err := os.Open(pos[0])
		if err != nil {
			fmt.Fprintf(env.Stderr, "modproxy doctor explain: %v\n", err)
			return ExitFailure
		}
		defer f.Close()
		in, name = f, pos[0]
	} else if doctorIsTerminal(env.Stdin) {
		fmt.Fprintln(env.Stderr, "modproxy doctor explain: reading go output from the terminal; end it with Ctrl-D")
	}
	if in == nil {
		in = strings.NewReader("")
	}
	findings, err := explain.Explain(in)
	if findings == nil {
		findings = []explain.Finding{}
	}
	if jsonOut {
		enc := json.NewEncoder(env.Stdout)
		enc.SetIndent("", "  ")
		_ = enc.Encode(struct {
			Findings []explain.Finding `json:"findings"`
		}{findings})
	} else if werr := explain.WriteText(env.Stdout, findings); werr != nil {
		fmt.Fprintf(env.Stderr, "modproxy doctor explain: %v\n", werr)
		return ExitFailure
	}
	if err != nil {
		fmt.Fprintf(env.Stderr, "modproxy doctor explain: reading %s: %v\n", name, err)
		return ExitFailure
	}
	return ExitOK
}

func doctorWriteCatalog(w io.Writer, jsonOut bool) int {
	cat := explain.Catalog()
	if jsonOut {
		enc := json.NewEncoder(w)
		enc.SetIndent("", "  ")
		_ = enc.Encode(cat)
		return ExitOK
	}
	for _, e := range cat {
		fmt.Fprintf(w, "%-10s %-36s %s\n", e.Category, e.ID, e.Title)
	}
	fmt.Fprintf(w, "\n%d recognised errors\n", len(cat))
	return ExitOK
}

func doctorIsTerminal(r io.Reader) bool {
	f, ok := r.(*os.File)
	if !ok {
		return false
	}
	st, err := f.Stat()
	return err == nil && st.Mode()&os.ModeCharDevice != 0
}
