package cli

import (
	"context"
	"flag"
	"fmt"
	"net/http"
	"strings"
	"time"

	"github.com/modproxy/modproxy/internal/admin"
	"github.com/modproxy/modproxy/internal/githook"
)

const hookHelp = `Git hooks that tell a modproxy server about new versions at once.

post-receive, run by git in the repository that received a push (install it
as hooks/post-receive of a bare repository), reads the "OLD NEW REF" lines
git gives it on standard input. For every version tag (refs/tags/vX.Y.Z, or
refs/tags/DIR/vX.Y.Z for the module in DIR) it reads the module path from
go.mod at the pushed commit (DIR/go.mod, or DIR/vN/go.mod for major version
N >= 2) and asks the server to refresh that module path (POST
URL/api/refresh): its cached version list, @latest and queries are fetched
again at the next request instead of when cache.ttl runs out.

URL is either the proxy's URL (the GOPROXY one, http://HOST:3000 or
http://HOST:3000/NAMESPACE) with a token that has the publish scope for the
module path (modproxy token create ci --scope publish --match
corp.example.com), or the admin API's URL with the server's admin.token (none
on a loopback admin listener without one). They come from the flags, else
from the environment (MODPROXY_HOOK_URL, MODPROXY_HOOK_TOKEN,
MODPROXY_HOOK_NAMESPACE), else from the repository's git configuration
(modproxy.url, modproxy.token, modproxy.namespace). --namespace applies to
the admin API (default: every namespace); the proxy's URL names its own.

The hook never fails the push: a tag it cannot read, a server that does not
answer within --timeout or refuses the request is a warning on standard
error, and it exits 0 (the new version is then visible once cache.ttl has
passed).`

func hookCommand() *command {
	return &command{
		name: "hook", summary: "git hooks that refresh the proxy when version tags are pushed", help: hookHelp,
		subs: []*command{{
			name: "post-receive", summary: "refresh the modules of pushed version tags (a git post-receive hook)", help: hookHelp,
			setup: func(fs *flag.FlagSet) runFunc {
				url := fs.String("proxy", "", "the proxy's or its admin API's `URL` (default $MODPROXY_HOOK_URL, git config modproxy.url)")
				token := fs.String("token", "", "a publish-scope or admin `token` (default $MODPROXY_HOOK_TOKEN, git config modproxy.token)")
				ns := fs.String("namespace", "", "refresh only in this `namespace` (default every namespace; $MODPROXY_HOOK_NAMESPACE, git config modproxy.namespace)")
				timeout := fs.Duration("timeout", 10*time.Second, "bound on each refresh request")
				return func(ctx context.Context, env Env, _ []string) int {
					return runPostReceive(ctx, env, hookSetting(ctx, env, *url, "URL", "url"),
						hookSetting(ctx, env, *token, "TOKEN", "token"), hookSetting(ctx, env, *ns, "NAMESPACE", "namespace"), *timeout)
				}
			},
		}},
	}
}

// hookSetting is flag, else $MODPROXY_HOOK_NAME, else git config
// modproxy.KEY.
func hookSetting(ctx context.Context, env Env, flagValue, envName, key string) string {
	if flagValue != "" {
		return flagValue
	}
	if v, ok := env.LookupEnv("MODPROXY_HOOK_" + envName); ok && v != "" {
		return v
	}
	return githook.GitConfig(ctx, "modproxy."+key)
}

// runPostReceive always exits 0: a post-receive hook cannot undo the push,
// and a failure here only delays when the new version is seen.
func runPostReceive(ctx context.Context, env Env, url, token, ns string, timeout time.Duration) int {
	warn := func(msg string) { fmt.Fprintf(env.Stderr, "modproxy hook: warning: %s\n", msg) }
	updates, err := githook.ParseUpdates(env.Stdin)
	if err != nil {
		warn(fmt.Sprintf("reading the ref updates: %v", err))
	}
	if url == "" {
		for _, u := range updates {
			if _, _, ok := githook.Tag(u.Ref); ok {
				warn("no proxy URL (--proxy, MODPROXY_HOOK_URL or git config modproxy.url): nothing refreshed")
				break
			}
		}
		return ExitOK
	}
	client := &admin.Client{URL: strings.TrimSuffix(url, "/"), Token: token, HTTP: &http.Client{Timeout: timeout}}
	githook.PostReceive(ctx, updates, githook.Options{
		Show: githook.GitShow,
		Refresh: func(ctx context.Context, mod string) error {
			_, err := client.Refresh(ctx, admin.RefreshRequest{Module: mod, Namespace: ns})
			return err
		},
		Warn: warn,
		Info: func(msg string) { fmt.Fprintf(env.Stderr, "modproxy hook: %s\n", msg) },
	})
	return ExitOK
}
