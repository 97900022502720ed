package cli

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"

	"github.com/modproxy/modproxy/internal/goauth"
	"github.com/modproxy/modproxy/internal/publish"
)

const publishHelp = `Publishes the module in DIR (default ".") to a modproxy that hosts its
path ([[hosted]] in the server's configuration).

In a git checkout the version is a tag: --version names it (for a module
in a subdirectory, the tag is DIR/VERSION, as the go command expects), or
without --version the semver tag at HEAD is used. The zip is made from the
tagged commit (what is committed, not the working tree), so its h1 hash is
the one the go command computes from the repository; .info's Time is the
commit's. Outside a git checkout, or with --no-vcs, the directory is zipped
as it is and --version is required.

The token needs the publish scope for the module path (modproxy token
create NAME --scope publish --match PATTERN); on a server without
authentication, the admin token. It is taken from --token, else
MODPROXY_TOKEN, else the credentials saved by modproxy login for the proxy
URL. --proxy is the proxy's URL (a namespace's URL publishes there); without
it, MODPROXY_PROXY, else the only URL modproxy login saved.

A published version never changes: publishing the same bytes again
succeeds and changes nothing; other bytes are refused (409).

Exit status: 0 published (or already published with the same bytes), 1
when the server refused or the upload failed, 2 on a usage error.`

func publishCommand() *command {
	return &command{
		name: "publish", args: "[DIR]", maxArgs: 1, summary: "publish a module version to a modproxy that hosts it", help: publishHelp,
		setup: func(fs *flag.FlagSet) runFunc {
			var o publish.Options
			fs.StringVar(&o.Proxy, "proxy", "", "the proxy's URL (default MODPROXY_PROXY, or the only URL modproxy login saved)")
			fs.StringVar(&o.Token, "token", "", "a token with the publish scope (default MODPROXY_TOKEN, or modproxy login's)")
			fs.StringVar(&o.Version, "version", "", "the version to publish (default: the semver tag at HEAD)")
			fs.BoolVar(&o.NoVCS, "no-vcs", false, "zip the directory as it is, even in a git checkout")
			jsonOut := fs.Bool("json", false, "print the server's answer as JSON")
			return func(ctx context.Context, env Env, args []string) int {
				o.Dir = "."
				if len(args) == 1 {
					o.Dir = args[0]
				}
				return runPublish(ctx, env, o, *jsonOut)
			}
		},
	}
}

func runPublish(ctx context.Context, env Env, o publish.Options, jsonOut bool) int {
	fail := func(code int, err error) int {
		fmt.Fprintf(env.Stderr, "modproxy publish: %v\n", err)
		return code
	}
	if o.Proxy == "" {
		o.Proxy, _ = env.LookupEnv("MODPROXY_PROXY")
	}
	var creds []goauth.Credential
	if path, err := goauth.DefaultPath(); err == nil {
		creds, _ = goauth.Load(path)
	}
	if o.Proxy == "" && len(creds) == 1 {
		o.Proxy = creds[0].URL
	}
	if o.Proxy == "" {
		return fail(ExitUsage, errors.New("no proxy: give --proxy URL (or MODPROXY_PROXY)"))
	}
	if o.Token == "" {
		o.Token, _ = env.LookupEnv("MODPROXY_TOKEN")
	}
	if o.Token == "" {
		if c, err := goauth.Match(creds, o.Proxy); err == nil {
			o.Token = c.Token
		}
	}
	res, err := publish.Run(ctx, o)
	var ue *publish.UsageError
	if errors.As(err, &ue) {
		return fail(ExitUsage, err)
	}
	if err != nil {
		return fail(ExitFailure, err)
	}
	if jsonOut {
		enc := json.NewEncoder(env.Stdout)
		enc.SetIndent("", "  ")
		_ = enc.Encode(res)
		return ExitOK
	}
	what := "published"
	if !res.Created {
		what = "already published with the same content"
	}
	fmt.Fprintf(env.Stdout, "%s@%s %s (from %s)\n  %s %s %s\n  %s %s/go.mod %s\n  log index %d\n",
		res.Module, res.Version, what, res.Source, res.Module, res.Version, res.H1, res.Module, res.Version, res.GoModH1, res.LogIndex)
	return ExitOK
}
