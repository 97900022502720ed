package cli

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"strings"
	"time"

	"github.com/modproxy/modproxy/internal/prefetch"
	"github.com/modproxy/modproxy/internal/upstream"
)

const prefetchHelp = `Warms a module proxy (modproxy or any GOPROXY server), or with --modcache the
local module cache, with every file the given projects need:

  go.sum, go.work.sum   "M V h1:..." needs M's .info, .mod and .zip;
                        "M V/go.mod h1:..." needs only the .mod
  go.mod                every require line needs .info, .mod and .zip, of
                        its replacement when replaced (nothing of the
                        replaced version; modules replaced by a directory
                        and excluded versions are skipped); a replacement
                        no require line uses needs its .mod
  go.work               the go.mod and go.sum of every used module, read as
                        one workspace (the go.work's and every module's
                        replacements apply to all), and go.work.sum
  MODULE@VERSION        .info, .mod and .zip (also one per line in --list)

A PATH is one of those files or a directory, walked for go.mod, go.sum,
go.work and go.work.sum (skipping vendor, testdata and directories starting
with "." or "_"). Without arguments or --list the current directory is
walked. Versions must be exact, as go.sum holds them.

Proxy target (default): the first proxy URL of "go env GOPROXY", or --proxy.
Modules matching "go env GONOPROXY" are skipped when the proxy comes from go
env (the go command never asks a proxy for them). Every body is read to the
end, so a caching proxy fills completely, and checked against its
Content-Length. Connection errors, timeouts, truncated bodies, 429 and 5xx
answers are retried with exponential backoff and jitter, waiting at least
the server's Retry-After; 404 and 410 are reported as not found and never
retried. A proxy answering from its cache cannot be told from one that
fetched upstream: both count as fetched.

Module-cache target (--modcache): runs "go mod download -json" (and
"go list -m -e -json" for go.mod-only versions) in batches with
GOFLAGS=-mod=mod, using the go command's own GOPROXY (or --proxy) and
GOSUMDB. Versions already in the module cache are counted as cached; the go
command's failures are reported with its message, not retried.

A progress bar is drawn on a terminal; otherwise a progress line is printed
every few seconds. The summary (or --json report) goes to standard output.

Exit status: 0 when every file was fetched or already cached, 1 when any
was not found or failed, 2 on a usage error or an unreadable input.`

// listFlags collects repeated --list values.
type listFlags []string

func (l *listFlags) String() string { return strings.Join(*l, ",") }

func (l *listFlags) Set(v string) error { *l = append(*l, v); return nil }

// prefetchFlags are prefetch's flags.
type prefetchFlags struct {
	proxyURL    *string
	modcache    *bool
	lists       listFlags
	concurrency *int
	timeout     *time.Duration
	retries     *int
	exclude     *string
	jsonOut     *bool
}

func prefetchCommand() *command {
	return &command{
		name: "prefetch", args: "[PATH | MODULE@VERSION ...]", maxArgs: -1,
		summary: "warm a proxy or the module cache from go.mod/go.sum/go.work files", help: prefetchHelp,
		setup: func(fs *flag.FlagSet) runFunc {
			f := &prefetchFlags{}
			f.proxyURL = fs.String("proxy", "", "proxy `URL` to warm (default: the first proxy URL of go env GOPROXY)")
			f.modcache = fs.Bool("modcache", false, "warm the local module cache with the go command instead of a proxy")
			fs.Var(&f.lists, "list", "read MODULE@VERSION lines from `file` (- for standard input); may be repeated")
			f.concurrency = fs.Int("concurrency", 8, "requests in flight at once (go commands at once with --modcache)")
			f.timeout = fs.Duration("timeout", 5*time.Minute, "time limit of one request, body included")
			f.retries = fs.Int("retries", 3, "retries of a request after a transient failure")
			f.exclude = fs.String("exclude", "", "skip modules matching these comma-separated `patterns` (GOPRIVATE syntax)")
			f.jsonOut = fs.Bool("json", false, "print the report as JSON")
			return func(ctx context.Context, env Env, args []string) int { return runPrefetch(ctx, env, f, args) }
		},
	}
}

func runPrefetch(ctx context.Context, env Env, f *prefetchFlags, args []string) int {
	usageErr := func(format string, a ...any) int {
		fmt.Fprintf(env.Stderr, "modproxy prefetch: "+format+"\n", a...)
		return ExitUsage
	}
	if *f.concurrency < 1 {
		return usageErr("--concurrency must be at least 1")
	}
	if *f.timeout <= 0 {
		return usageErr("--timeout must be positive")
	}
	if *f.retries < 0 {
		return usageErr("--retries must not be negative")
	}

	set := prefetch.NewSet()
	if err := readPrefetchInputs(set, env, args, f.lists); err != nil {
		return usageErr("%v", err)
	}
	opts := prefetch.Options{
		Concurrency: *f.concurrency,
		Timeout:     *f.timeout,
		Attempts:    *f.retries + 1,
		UserAgent:   "modproxy-prefetch/" + Version(),
		Progress:    progress(env.Stderr, "prefetching"),
	}
	var fetcher prefetch.Fetcher
	switch {
	case *f.modcache:
		if *f.proxyURL != "" {
			if _, err := prefetch.NewProxyFetcher(*f.proxyURL, opts); err != nil {
				return usageErr("--proxy: %v", err)
			}
			opts.Env = append(os.Environ(), "GOPROXY="+*f.proxyURL)
		}
		fetcher = prefetch.NewModCacheFetcher(opts)
	default:
		target := *f.proxyURL
		if target == "" {
			var noProxy string
			var err error
			target, noProxy, err = defaultProxy(ctx, env)
			if err != nil {
				return usageErr("%v", err)
			}
			set.Exclude(noProxy, "matches GONOPROXY")
		}
		f, err := prefetch.NewProxyFetcher(target, opts)
		if err != nil {
			return usageErr("%v", err)
		}
		fetcher = f
	}
	set.Exclude(*f.exclude, "matches --exclude")

	rep, err := fetcher.Prefetch(ctx, set.Modules())
	if err != nil {
		fmt.Fprintf(env.Stderr, "modproxy prefetch: %v\n", err)
		return ExitFailure
	}
	rep.Inputs, rep.Skipped = set.Sources(), set.Skipped()
	if *f.jsonOut {
		enc := json.NewEncoder(env.Stdout)
		enc.SetIndent("", "  ")
		_ = enc.Encode(rep)
	} else {
		rep.WriteText(env.Stdout)
	}
	if !rep.OK() {
		return ExitFailure
	}
	return ExitOK
}

// readPrefetchInputs fills set from the arguments (files, directories,
// MODULE@VERSION) and the --list files.
func readPrefetchInputs(set *prefetch.Set, env Env, args, lists []string) error {
	if len(args) == 0 && len(lists) == 0 {
		args = []string{"."}
	}
	var paths []string
	for _, a := range args {
		if _, err := os.Stat(a); err == nil || !strings.Contains(a, "@") {
			paths = append(paths, a)
			continue
		}
		if err := set.AddArg("argument", a); err != nil {
			return err
		}
	}
	if err := set.AddPaths(paths...); err != nil {
		return err
	}
	for _, name := range lists {
		var (
			data []byte
			err  error
		)
		if name == "-" {
			if env.Stdin == nil {
				return errors.New("--list -: no standard input")
			}
			data, err = io.ReadAll(env.Stdin)
			name = "standard input"
		} else {
			data, err = os.ReadFile(name)
		}
		if err != nil {
			return fmt.Errorf("--list %s: %w", name, err)
		}
		if err := set.AddList(name, data); err != nil {
			return err
		}
	}
	return nil
}

// defaultProxy returns the first proxy URL of go env GOPROXY and the
// GONOPROXY patterns, as the go command reports them.
func defaultProxy(ctx context.Context, env Env) (target, noProxy string, err error) {
	if env.GoEnv == nil {
		return "", "", errors.New("no --proxy given and the go command is not available to read GOPROXY")
	}
	vals, err := env.GoEnv(ctx, "GOPROXY", "GONOPROXY")
	if err != nil {
		return "", "", fmt.Errorf("no --proxy given and reading GOPROXY failed: %v", err)
	}
	specs, err := upstream.ParseList(vals["GOPROXY"])
	if err != nil {
		return "", "", fmt.Errorf("go env GOPROXY: %v", err)
	}
	for _, s := range specs {
		if s.Target != "direct" && s.Target != "off" {
			return s.Target, vals["GONOPROXY"], nil
		}
	}
	return "", "", fmt.Errorf("go env GOPROXY (%q) has no proxy URL: give --proxy URL or use --modcache", vals["GOPROXY"])
}
