package doctor

import (
	"context"
	"crypto/x509"
	"errors"
	"net/http"
	"net/url"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/modproxy/modproxy/internal/access"
)

// authProxy is a proxy that requires a token, as modproxy with
// auth.mode = "required" does: the real access service decides, a 401
// carries modproxy's Basic challenge.
func authProxy(t *testing.T) (srvURL string, pool *x509.CertPool, good, revoked string, seen func() string) {
	t.Helper()
	ctx := context.Background()
	svc, err := access.Open(ctx, access.Options{State: access.NewFile(filepath.Join(t.TempDir(), "tokens.json"))})
	if err != nil {
		t.Fatal(err)
	}
	read := access.Grant{Scopes: []access.Scope{access.ScopeRead}}
	if good, _, err = svc.Create(ctx, "dev", read, time.Time{}); err != nil {
		t.Fatal(err)
	}
	if revoked, _, err = svc.Create(ctx, "old", read, time.Time{}); err != nil {
		t.Fatal(err)
	}
	if err := svc.Revoke(ctx, "old"); err != nil {
		t.Fatal(err)
	}
	list := &listHandler{list: "v1.0.0\n"}
	srv := newTLSServer(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if _, err := svc.Authenticate(r); err != nil {
			list.mu.Lock()
			list.auth = r.Header.Get("Authorization")
			list.mu.Unlock()
			w.Header().Set("WWW-Authenticate", `Basic realm="modproxy"`)
			http.Error(w, "authentication required", http.StatusUnauthorized)
			return
		}
		list.ServeHTTP(w, r)
	}))
	pool = x509.NewCertPool()
	pool.AddCert(srv.Certificate())
	return srv.URL, pool, good, revoked, list.lastAuth
}

func TestProxyAuthCredentials(t *testing.T) {
	srvURL, pool, good, revoked, seen := authProxy(t)
	u, err := url.Parse(srvURL)
	if err != nil {
		t.Fatal(err)
	}
	helper := func(tok string, err error) func(string) (string, error) {
		return func(raw string) (string, error) {
			if raw != srvURL && !strings.HasPrefix(raw, srvURL+"/") {
				t.Errorf("helper asked for %s, not below %s", raw, srvURL)
			}
			return tok, err
		}
	}
	tests := []struct {
		name   string
		goauth string
		netrc  string // password of a netrc line for the proxy's host:port
		helper func(string) (string, error)
		want   []expect
		sent   string // prefix of the Authorization the proxy saw last
	}{
		{"nothing", "netrc", "", nil, []expect{
			{IDProxyAuth, Problem, `WWW-Authenticate: Basic realm="modproxy"`},
			{IDProxyAuth, Problem, "no credentials sent: no netrc file"},
			{IDProxyAuth, Problem, "modproxy login " + srvURL},
			{IDProxyHTTP, Problem, "401"},
		}, ""},
		{"netrc accepted", "netrc", good, nil, []expect{
			{IDProxyAuth, OK, "sent basic auth from netrc machine " + u.Host + ": accepted"},
			{IDProxyHTTP, OK, "200 OK"},
		}, "Basic "},
		{"netrc revoked", "netrc", revoked, nil, []expect{
			{IDProxyAuth, Problem, "sent basic auth from netrc machine " + u.Host + ": rejected"},
		}, "Basic "},
		{"helper accepted", "modproxy auth", "", helper(good, nil), []expect{
			{IDProxyAuth, OK, `a bearer token from GOAUTH modproxy auth (modproxy login): accepted`},
		}, "Bearer mp_"},
		{"helper without credential", "netrc;modproxy auth", "", helper("", nil), []expect{
			{IDProxyAuth, Problem, `GOAUTH command "modproxy auth" has no credential for this URL`},
		}, ""},
		{"helper file unreadable", "modproxy auth", "", helper("", errors.New("credentials file is readable by others")), []expect{
			{IDProxyAuth, Problem, "no usable credential for this URL: credentials file is readable by others"},
		}, ""},
		{"helper not consulted", "modproxy auth", "", nil, []expect{
			{IDProxyAuth, Problem, `GOAUTH command "modproxy auth": its credentials are not read by doctor`},
			{IDProxyAuth, Problem, "GOAUTH does not include netrc"},
		}, ""},
		{"other command", "netrc;corp-login", good + "x", nil, []expect{
			{IDProxyAuth, Problem, "rejected"},
		}, "Basic "},
		{"other command, no netrc", "corp-login", "", nil, []expect{
			{IDProxyAuth, Problem, `GOAUTH command "corp-login" is not run by doctor`},
		}, ""},
		{"off", "off", good, helper(good, nil), []expect{
			{IDProxyAuth, Problem, "GOAUTH=off: no credentials are sent"},
		}, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			env := baseEnv(t)
			env["GOPROXY"] = srvURL
			env["GOSUMDB"] = "off"
			env["GOAUTH"] = tt.goauth
			o := netOptions(t, env)
			home := t.TempDir()
			if tt.netrc != "" {
				writeFile(t, filepath.Join(home, ".netrc"), "machine "+u.Host+" login me password "+tt.netrc+"\n", 0o600)
			}
			o.LookupEnv = mapLookup(map[string]string{"HOME": home})
			o.LookPath = func(p string) (string, error) { return "/usr/local/bin/" + p, nil }
			o.RootCAs = pool
			o.ModproxyAuth = tt.helper
			rep := mustRun(t, o)
			checkExpect(t, rep, tt.want)
			if got := seen(); !strings.HasPrefix(got, tt.sent) || tt.sent == "" && got != "" {
				t.Errorf("the proxy last saw Authorization %q, want prefix %q", got, tt.sent)
			}
			if d := dump(rep); strings.Contains(d, good) || strings.Contains(d, revoked) {
				t.Errorf("the report holds a token:\n%s", d)
			}
		})
	}

	// Plain http: credentials are never sent.
	env := baseEnv(t)
	env["GOPROXY"] = "http://127.0.0.1:9/" // refused at once; only the reasoning is checked
	o := netOptions(t, env)
	c := &checker{o: o.withDefaults(), auth: parseGoAuth("netrc")}
	hu, _ := url.Parse("http://proxy.test/")
	c.reportAuth(&proxyProbe{Entry: proxyEntry{Kind: kindProxy, URL: hu}, List: &httpResult{Status: http.StatusUnauthorized}}, "GOPROXY entry 1")
	checkExpect(t, Report{Findings: c.findings}, []expect{{IDProxyAuth, Problem, "credentials over https only"}, {IDProxyAuth, Problem, "use https://proxy.test/"}})
}
