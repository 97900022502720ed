package cli

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	iofs "io/fs"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/modproxy/modproxy/internal/access"
	"github.com/modproxy/modproxy/internal/app"
	"github.com/modproxy/modproxy/internal/config"
)

const tokenHelp = `Manages the tokens of a modproxy cache (CACHE_DIR/state/tokens.json; only
their SHA-256 is stored). "create" prints the new token's secret once on
stdout and nothing else: give it to the client as
"Authorization: Bearer TOKEN", as the password of a .netrc line
(machine HOST:PORT login NAME password TOKEN) or to "modproxy login URL".
A running server sees a created or revoked token within 5 seconds.

Scopes: read (modules through the protocol, in --namespace namespaces,
default the root; "*" for all), publish (reserved), admin (the admin API).
--match limits the private modules (verify.private) a token may read
(GOPRIVATE syntax, e.g. corp.example.com/team-a/*); public modules stay
readable. A module a token may not read answers 404.`

func tokenCommand() *command {
	return &command{
		name: "token", summary: "create, list and revoke the tokens of a cache", help: tokenHelp,
		subs: []*command{{
			name: "create", args: "NAME", minArgs: 1, maxArgs: 1, summary: "create a token and print its secret once",
			help: tokenHelp,
			setup: func(fs *flag.FlagSet) runFunc {
				cf := addConfigFlags(fs, false)
				var scopes, namespaces, match listFlags
				fs.Var(&scopes, "scope", "`scope` granted: read, publish or admin (repeatable; default read)")
				fs.Var(&namespaces, "namespace", "`namespace` the token may read (repeatable; default the root, \"*\" all)")
				fs.Var(&match, "match", "private module path `pattern` the token may read (repeatable, GOPRIVATE syntax)")
				expires := fs.Duration("expires", 0, "the token expires after this `duration` (default never)")
				return func(ctx context.Context, env Env, args []string) int {
					return withTokens(ctx, env, cf, "create", func(svc *access.Service) error {
						return createToken(ctx, env, svc, args[0], scopes, namespaces, match, *expires)
					})
				}
			},
		}, {
			name: "list", summary: "list the tokens (never their secrets)", help: tokenHelp,
			setup: func(fs *flag.FlagSet) runFunc {
				cf := addConfigFlags(fs, false)
				jsonOut := fs.Bool("json", false, "print JSON")
				return func(ctx context.Context, env Env, _ []string) int {
					return withTokens(ctx, env, cf, "list", func(svc *access.Service) error {
						return listTokens(env, svc.List(), *jsonOut)
					})
				}
			},
		}, {
			name: "revoke", args: "NAME", minArgs: 1, maxArgs: 1, summary: "revoke a token", help: tokenHelp,
			setup: func(fs *flag.FlagSet) runFunc {
				cf := addConfigFlags(fs, false)
				return func(ctx context.Context, env Env, args []string) int {
					return withTokens(ctx, env, cf, "revoke", func(svc *access.Service) error {
						if err := svc.Revoke(ctx, args[0]); err != nil {
							return err
						}
						fmt.Fprintf(env.Stderr, "revoked token %s (running servers refuse it within 5 s)\n", args[0])
						return nil
					})
				}
			},
		}},
	}
}

// withTokens opens the cache's token service and runs fn, mapping its
// error to an exit code: a bad specification, a name in use or an unknown
// name is a usage error.
func withTokens(ctx context.Context, env Env, cf *configFlags, sub string, fn func(*access.Service) error) int {
	svc, code := openTokens(ctx, env, cf)
	if svc == nil {
		return code
	}
	if err := fn(svc); err != nil {
		fmt.Fprintf(env.Stderr, "modproxy token %s: %v\n", sub, err)
		if errors.Is(err, access.ErrInvalidSpec) || errors.Is(err, iofs.ErrExist) || errors.Is(err, iofs.ErrNotExist) {
			return ExitUsage
		}
		return ExitFailure
	}
	return ExitOK
}

// openTokens opens the token service of the cache the configuration names,
// as serve finds it. The token commands do not listen: the listen address
// is set to loopback so that a configuration meant for a public listener
// with auth.mode = "off" (about to be switched on) does not stop them.
func openTokens(ctx context.Context, env Env, cf *configFlags) (*access.Service, int) {
	cf.noUpstream(env)
	loopback := "127.0.0.1:0"
	cf.set["listen"] = &loopback
	cfg, err := cf.load(ctx, env)
	if err != nil {
		fmt.Fprintf(env.Stderr, "modproxy token: %v\n", err)
		return nil, ExitUsage
	}
	svc, err := app.OpenAccess(ctx, cfg, app.NewLogger(config.Log{Format: cfg.Log.Format, Level: "warn"}, env.Stderr))
	if err != nil {
		fmt.Fprintf(env.Stderr, "modproxy token: %v\n", err)
		var ce *config.Error
		if errors.As(err, &ce) {
			return nil, ExitUsage
		}
		return nil, ExitFailure
	}
	return svc, ExitOK
}

func createToken(ctx context.Context, env Env, svc *access.Service, name string, scopeNames, namespaces, match []string, expires time.Duration) error {
	if len(scopeNames) == 0 {
		scopeNames = []string{string(access.ScopeRead)}
	}
	var scopes []access.Scope
	for _, s := range scopeNames {
		sc, err := access.ParseScope(s)
		if err != nil {
			return err
		}
		scopes = append(scopes, sc)
	}
	g, err := access.NewGrant(scopes, namespaces, match)
	if err != nil {
		return err
	}
	if expires < 0 {
		return fmt.Errorf("%w: --expires must be positive", access.ErrInvalidSpec)
	}
	var until time.Time
	if expires > 0 {
		until = time.Now().Add(expires)
	}
	secret, tok, err := svc.Create(ctx, name, g, until)
	if err != nil {
		return err
	}
	fmt.Fprintln(env.Stdout, secret)
	fmt.Fprintf(env.Stderr, "created token %s (%s); its secret, on stdout, is not shown again\n", tok.Name, describeGrant(tok.Grant))
	return nil
}

func describeGrant(g access.Grant) string {
	ns := make([]string, len(g.Namespaces))
	for i, n := range g.Namespaces {
		if n == access.RootNamespace {
			n = "(root)"
		}
		ns[i] = n
	}
	scopes := make([]string, len(g.Scopes))
	for i, s := range g.Scopes {
		scopes[i] = string(s)
	}
	d := "scopes " + strings.Join(scopes, ",") + ", namespaces " + strings.Join(ns, ",")
	if len(g.Match) > 0 {
		d += ", match " + strings.Join(g.Match, ",")
	}
	return d
}

func listTokens(env Env, toks []access.Token, jsonOut bool) error {
	if jsonOut {
		if toks == nil {
			toks = []access.Token{}
		}
		enc := json.NewEncoder(env.Stdout)
		enc.SetIndent("", "  ")
		return enc.Encode(toks)
	}
	now := time.Now()
	tw := tabwriter.NewWriter(env.Stdout, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "NAME\tSTATUS\tGRANT\tCREATED\tEXPIRES")
	for _, t := range toks {
		exp := "never"
		if !t.Expires.IsZero() {
			exp = t.Expires.UTC().Format(time.RFC3339)
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\n", t.Name, t.Status(now), describeGrant(t.Grant), t.Created.UTC().Format(time.RFC3339), exp)
	}
	return tw.Flush()
}
