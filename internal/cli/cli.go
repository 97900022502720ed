// Package cli is modproxy's command line: a tree of commands (see command:
// help, flags before or after the arguments, usage errors, the same way
// for every command), exit codes and build information. It holds no
// business logic.
//
// Exit codes: 0 success, 1 failure at run time, 2 usage or configuration
// error.
package cli

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"strings"
	"time"

	"github.com/modproxy/modproxy/internal/app"
	"github.com/modproxy/modproxy/internal/config"
	"github.com/modproxy/modproxy/internal/goenv"
	"github.com/modproxy/modproxy/internal/logbuf"
)

// Exit codes.
const (
	ExitOK      = 0
	ExitFailure = 1
	ExitUsage   = 2
)

// Env is what a command may read from its environment; tests replace it.
type Env struct {
	Stdout, Stderr io.Writer
	Stdin          io.Reader
	LookupEnv      func(string) (string, bool)
	GoEnv          goenv.Reader
}

// Main runs modproxy with args (without the program name) and returns the
// exit code.
func Main(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	return Run(ctx, args, Env{Stdout: stdout, Stderr: stderr, Stdin: os.Stdin, LookupEnv: os.LookupEnv, GoEnv: goenv.Command})
}

// commands is modproxy's command tree, in the order help lists it. A new
// command is one constructor here (see command).
func commands() []*command {
	return []*command{
		serveCommand(),
		verifyCommand(),
		prefetchCommand(),
		doctorCommand(),
		cleanCommand(),
		gcCommand(),
		indexCommand(),
		tokenCommand(),
		loginCommand(),
		authCommand(),
		hookCommand(),
		publishCommand(),
		hostedKeyCommand(),
		vulnCommand(),
		exportCommand(),
		importCommand(),
		versionCommand(),
	}
}

const usage = `modproxy is a caching Go module proxy and module-cache toolkit.

Usage:
  modproxy COMMAND [flags] [arguments]

Commands:
%s
Flags may come before or after the arguments; "--" ends them.
Run 'modproxy COMMAND --help' (or 'modproxy help COMMAND') for a command's
flags; 'modproxy serve --help' lists every configuration key.
`

func printUsage(w io.Writer) {
	var b strings.Builder
	writeCommandList(&b, commands(), "")
	fmt.Fprintf(w, usage, b.String())
}

// Run is Main with an explicit environment.
func Run(ctx context.Context, args []string, env Env) int {
	root := &command{name: "modproxy", subs: commands()}
	if len(args) == 0 {
		printUsage(env.Stderr)
		return ExitUsage
	}
	switch args[0] {
	case "help", "-h", "-help", "--help":
		if len(args) == 1 {
			printUsage(env.Stdout)
			return ExitOK
		}
		c := root.find(args[1:])
		if c == nil {
			fmt.Fprintf(env.Stderr, "modproxy help: unknown command %q\nrun 'modproxy help' for the list of commands\n", strings.Join(args[1:], " "))
			return ExitUsage
		}
		c.writeHelp(env.Stdout, "modproxy "+strings.Join(args[1:], " "))
		return ExitOK
	case "-version", "--version":
		args = []string{"version"}
	}
	c := root.sub(args[0])
	if c == nil {
		fmt.Fprintf(env.Stderr, "modproxy: unknown command %q\nrun 'modproxy help' for the list of commands\n", args[0])
		return ExitUsage
	}
	return c.execute(ctx, env, "modproxy "+c.name, args[1:])
}

const serveHelp = `Runs the caching GOPROXY server. Point the go command at it with
  GOPROXY=http://LISTEN-ADDRESS go mod download

Every canonical .mod and .zip is verified against the checksum database
(sumdb) before it is stored or served, except modules matching
verify.private (default: go env GONOSUMDB / GOPRIVATE). Metrics are served
at /metrics, health at /healthz and /readyz (with every upstream's circuit
breaker). The /cached-only/ prefix (or Cache-Control: only-if-cached) answers
from the cache alone; [[namespace]] tables add proxies under /NAME/.
[[webhook]] tables (url, events, secret; file only) receive notable events
as signed JSON POSTs; POST /api/refresh (admin API, or this listener with a
publish-scope token) makes a module's new versions visible at once.

The admin API and web dashboard listen on admin.listen (default auto: the
port after listen's, 127.0.0.1:3001; when that is taken the server runs
without them and says so; off or empty turns them off; a bearer token,
admin.token, is required beyond loopback). An address that cannot be bound
is an error (exit status 2) naming it and the flag that changes it.
GC runs every gc.interval by the [gc] policies. SIGINT or SIGTERM shuts
down gracefully, letting in-flight downloads finish.

The supply-chain policy ([policy], and [namespace.policy] per namespace)
refuses zips with 403 and a one-line reason: vulnerable versions under
policy.vulnerable = block (warn serves them with an X-Modproxy-Advisory
header), versions younger than policy.min_age (age from the later of the
.info time and when this proxy first saw the version; also hidden from
lists and @latest; an unknown release time is refused), and versions
retracted by the go.mod of the newest version the list shows under
policy.retracted = block (warn serves them with X-Modproxy-Retracted).

Configuration, lowest precedence first: built-in defaults, the --config
file (TOML), MODPROXY_* environment variables, then these flags. When no
upstream is configured it is read from "go env GOPROXY", and the proxied
checksum database from "go env GOSUMDB".`

// configFlags are the flags shared by the commands that read the
// configuration.
type configFlags struct {
	file     *string
	set      map[string]*string
	noVerify *bool
}

func addConfigFlags(fs *flag.FlagSet, serve bool) *configFlags {
	cf := &configFlags{file: fs.String("config", "", "TOML configuration `file`"), set: map[string]*string{}}
	cf.set["cache_dir"] = fs.String("cache-dir", "", "cache `directory` (default the per-user cache directory + /modproxy)")
	cf.set["sumdb"] = fs.String("sumdb", "", "checksum `databases`, comma-separated, each as GOSUMDB accepts it, or off (default: go env GOSUMDB)")
	cf.set["log.format"] = fs.String("log-format", "", "log `format`: text or json (default text)")
	cf.set["log.level"] = fs.String("log-level", "", "log `level`: debug, info, warn or error (default info)")
	if serve {
		cf.set["listen"] = fs.String("listen", "", "listen `address` (default 127.0.0.1:3000)")
		cf.set["admin.listen"] = fs.String("admin-listen", "", "admin API and dashboard `address`, or off (default auto: the port after --listen's, on loopback)")
		cf.set["upstream"] = fs.String("upstream", "", "upstream `list` in GOPROXY syntax (default: go env GOPROXY)")
		cf.set["tls.cert_file"] = fs.String("tls-cert", "", "TLS certificate `file` (PEM): HTTPS on the listeners, with --tls-key")
		cf.set["tls.key_file"] = fs.String("tls-key", "", "TLS private key `file` (PEM)")
		cf.set["auth.mode"] = fs.String("auth", "", "authentication `mode`: off or required (default off)")
		cf.noVerify = fs.Bool("no-verify", false, "turn checksum verification off (logged loudly; same as verify.enabled = false)")
	}
	return cf
}

// noUpstream is for commands that work on a cache directory without
// fetching: unless a config file or MODPROXY_UPSTREAM names one, the
// upstream is "off", so that no default is asked of the go command.
func (cf *configFlags) noUpstream(env Env) {
	if *cf.file != "" {
		return
	}
	if _, ok := env.LookupEnv("MODPROXY_UPSTREAM"); !ok {
		off := "off"
		cf.set["upstream"] = &off
	}
}

// load builds the configuration: defaults, file, environment, flags, go env.
func (cf *configFlags) load(ctx context.Context, env Env) (config.Config, error) {
	cfg := config.Default()
	if *cf.file != "" {
		if err := cfg.LoadFile(*cf.file); err != nil {
			return cfg, err
		}
	}
	if err := cfg.ApplyEnv(env.LookupEnv); err != nil {
		return cfg, err
	}
	for key, val := range cf.set {
		if *val != "" {
			if err := cfg.SetKey(key, *val); err != nil {
				return cfg, err
			}
		}
	}
	if cf.noVerify != nil && *cf.noVerify {
		cfg.Verify.Enabled = false
	}
	if err := cfg.Resolve(ctx, env.GoEnv); err != nil {
		return cfg, err
	}
	if err := cfg.Validate(); err != nil {
		return cfg, err
	}
	return cfg, app.Validate(cfg)
}

// isConfigFlag reports whether name is one of the configuration flags
// every command that reads the configuration has (addConfigFlags without
// serve): help lists them after the command's own flags.
func isConfigFlag(name string) bool {
	switch name {
	case "config", "cache-dir", "sumdb", "log-format", "log-level":
		return true
	}
	return false
}

// writeConfigKeys prints every configuration key with its environment
// variable.
func writeConfigKeys(w io.Writer) {
	for _, k := range config.Keys() {
		fmt.Fprintf(w, "  %-30s %s\n", k.Key, k.Env)
	}
}

func serveCommand() *command {
	return &command{
		name: "serve", summary: "run the caching GOPROXY server", help: serveHelp, keys: true,
		setup: func(fs *flag.FlagSet) runFunc {
			cf := addConfigFlags(fs, true)
			return func(ctx context.Context, env Env, _ []string) int { return runServe(ctx, env, cf) }
		},
	}
}

func runServe(ctx context.Context, env Env, cf *configFlags) int {
	cfg, err := cf.load(ctx, env)
	if err != nil {
		fmt.Fprintf(env.Stderr, "modproxy serve: %v\n", err)
		return ExitUsage
	}
	logw := logbuf.New(env.Stderr, 200*time.Millisecond)
	defer logw.Close()
	log := app.NewLogger(cfg.Log, logw)
	srv, err := app.New(cfg, log, app.Info{Version: Version()})
	if err != nil {
		logw.Flush()
		fmt.Fprintf(env.Stderr, "modproxy serve: %v\n", err)
		var ce *config.Error
		if errors.As(err, &ce) {
			return ExitUsage
		}
		return ExitFailure
	}
	defer srv.Close()
	if err := srv.Serve(ctx, nil); err != nil {
		var ce *config.Error
		if errors.As(err, &ce) { // an address that cannot be bound
			logw.Flush()
			fmt.Fprintf(env.Stderr, "modproxy serve: %v\n", err)
			return ExitUsage
		}
		log.Error("server failed", "err", err)
		return ExitFailure
	}
	return ExitOK
}
