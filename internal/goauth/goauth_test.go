package goauth

import (
	"bytes"
	"errors"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"testing"
)

const (
	tokA = "mp_AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA"
	tokB = "mp_BBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBB"
	tokC = "mp_CCCCCCCCCCCCCCCCCCCCCCCCCCCCCCCCCCCCCCCCCCC"
)

func login(t *testing.T, path, url, token string) {
	t.Helper()
	if err := Login(path, url, token); err != nil {
		t.Fatal(err)
	}
}

// saved makes a credentials file with three entries.
func saved(t *testing.T) string {
	t.Helper()
	path := filepath.Join(t.TempDir(), "modproxy", FileName)
	login(t, path, "https://proxy.corp.example.com/", tokA)
	login(t, path, "https://PROXY.corp.example.com/prod", tokB)
	login(t, path, "https://other.example.com:8443", tokC)
	return path
}

func run(t *testing.T, path string, stdin string, args ...string) (string, error) {
	t.Helper()
	var out bytes.Buffer
	err := Run(path, args, strings.NewReader(stdin), &out)
	return out.String(), err
}

const response401 = "HTTP/1.1 401 Unauthorized\n" +
	"Content-Length: 13\n" +
	"Content-Type: text/plain; charset=utf-8\n" +
	"Www-Authenticate: Basic realm=\"modproxy\"\n" +
	"\n"

func TestRunFirstCallPrintsEverything(t *testing.T) {
	got, err := run(t, saved(t), "")
	if err != nil {
		t.Fatal(err)
	}
	want := "https://other.example.com:8443\n" +
		"\n" +
		"Authorization: Bearer " + tokC + "\n" +
		"\n" +
		"https://proxy.corp.example.com\n" +
		"\n" +
		"Authorization: Bearer " + tokA + "\n" +
		"\n" +
		"https://proxy.corp.example.com/prod\n" +
		"\n" +
		"Authorization: Bearer " + tokB + "\n" +
		"\n"
	if got != want {
		t.Errorf("output:\n%q\nwant:\n%q", got, want)
	}
}

func TestRunWithURL(t *testing.T) {
	path := saved(t)
	set := func(url, tok string) string { return url + "\n\nAuthorization: Bearer " + tok + "\n\n" }
	for _, tc := range []struct {
		url  string
		want string
	}{
		{"https://proxy.corp.example.com/example.org/m/@v/list", set("https://proxy.corp.example.com", tokA)},
		{"https://proxy.corp.example.com", set("https://proxy.corp.example.com", tokA)},
		{"https://proxy.corp.example.com:443/x", set("https://proxy.corp.example.com", tokA)},
		{"HTTPS://Proxy.Corp.Example.com/x", set("https://proxy.corp.example.com", tokA)},
		{"https://proxy.corp.example.com/prod/corp.example.com/lib/@v/v1.0.0.zip", set("https://proxy.corp.example.com/prod", tokB)},
		{"https://proxy.corp.example.com/prod", set("https://proxy.corp.example.com/prod", tokB)},
		{"https://proxy.corp.example.com/production/x", set("https://proxy.corp.example.com", tokA)}, // not below /prod
		{"https://proxy.corp.example.com/m/@latest?go-get=1", set("https://proxy.corp.example.com", tokA)},
		{"https://other.example.com:8443/m/@v/list", set("https://other.example.com:8443", tokC)},
		{"https://other.example.com/m/@v/list", ""},           // another port
		{"https://proxy.corp.example.com.evil.example/x", ""}, // another host
		{"https://evilproxy.corp.example.com/x", ""},
		{"https://corp.example.com/x", ""},
	} {
		got, err := run(t, path, response401, tc.url)
		if err != nil {
			t.Errorf("%s: %v", tc.url, err)
			continue
		}
		if got != tc.want {
			t.Errorf("%s:\n%q\nwant\n%q", tc.url, got, tc.want)
		}
	}
}

func TestRunRefusals(t *testing.T) {
	path := saved(t)
	for _, tc := range []struct {
		args []string
		want error
	}{
		{[]string{"http://proxy.corp.example.com/x"}, ErrNotHTTPS},
		{[]string{"proxy.corp.example.com/x"}, ErrNotHTTPS},
		{[]string{"https:///x"}, ErrInvalid},
		{[]string{"https://proxy.corp.example.com/x", "more"}, ErrUsage},
	} {
		got, err := run(t, path, response401, tc.args...)
		if !errors.Is(err, tc.want) || got != "" {
			t.Errorf("Run %q = %q, %v; want no output and %v", tc.args, got, err, tc.want)
		}
	}

	// No file: no credentials, no error (GOAUTH may list several helpers).
	if got, err := run(t, filepath.Join(t.TempDir(), FileName), ""); err != nil || got != "" {
		t.Errorf("without a file: %q, %v", got, err)
	}
	if runtime.GOOS == "windows" {
		return
	}
	if err := os.Chmod(path, 0o644); err != nil {
		t.Fatal(err)
	}
	for _, args := range [][]string{nil, {"https://proxy.corp.example.com/x"}} {
		if got, err := run(t, path, response401, args...); !errors.Is(err, ErrPermissions) || got != "" {
			t.Errorf("file readable by others, args %q: %q, %v; want ErrPermissions", args, got, err)
		}
	}
	// Login rewrites it privately.
	login(t, path, "https://proxy.corp.example.com", tokC)
	if got, err := run(t, path, "", "https://proxy.corp.example.com/x"); err != nil || !strings.Contains(got, tokC) {
		t.Errorf("after Login: %q, %v", got, err)
	}
}

func TestLoginFile(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "config", "modproxy")
	path := filepath.Join(dir, FileName)
	login(t, path, "https://proxy.corp.example.com/prod/", tokA)
	login(t, path, "https://proxy.corp.example.com/prod", tokB) // replaces
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	want := `{
  "version": 1,
  "credentials": [
    {
      "url": "https://proxy.corp.example.com/prod",
      "token": "` + tokB + `"
    }
  ]
}
`
	if string(data) != want {
		t.Errorf("file:\n%s\nwant:\n%s", data, want)
	}
	if runtime.GOOS != "windows" {
		for p, mode := range map[string]os.FileMode{path: 0o600, dir: 0o700} {
			fi, err := os.Stat(p)
			if err != nil {
				t.Fatal(err)
			}
			if fi.Mode().Perm() != mode {
				t.Errorf("%s: mode %v, want %v", p, fi.Mode().Perm(), mode)
			}
		}
	}

	for _, tc := range []struct {
		url, token string
		want       error
	}{
		{"http://proxy.corp.example.com", tokA, ErrNotHTTPS},
		{"ftp://proxy.corp.example.com", tokA, ErrNotHTTPS},
		{"https://user:pw@proxy.corp.example.com", tokA, ErrInvalid},
		{"https://proxy.corp.example.com/?x=1", tokA, ErrInvalid},
		{"https://proxy.corp.example.com/#x", tokA, ErrInvalid},
		{"https://", tokA, ErrInvalid},
		{"https://proxy.corp.example.com", "", ErrInvalid},
		{"https://proxy.corp.example.com", tokA + "\nX-Injected: 1", ErrInvalid},
		{"https://proxy.corp.example.com", "two words", ErrInvalid},
		{"https://proxy.corp.example.com", "===", ErrInvalid},
	} {
		if err := Login(path, tc.url, tc.token); !errors.Is(err, tc.want) {
			t.Errorf("Login(%q, %q) = %v, want %v", tc.url, tc.token, err, tc.want)
		}
	}
	if after, err := os.ReadFile(path); err != nil || string(after) != want {
		t.Errorf("refused Logins changed the file: %s, %v", after, err)
	}

	if ok, err := Logout(path, "https://proxy.corp.example.com/prod/"); err != nil || !ok {
		t.Errorf("Logout = %v, %v", ok, err)
	}
	if ok, err := Logout(path, "https://proxy.corp.example.com/prod"); err != nil || ok {
		t.Errorf("second Logout = %v, %v; want false", ok, err)
	}
	if creds, err := Load(path); err != nil || len(creds) != 0 {
		t.Errorf("after Logout: %v, %v", creds, err)
	}
}

func TestLoadRejectsTamperedFiles(t *testing.T) {
	for name, doc := range map[string]string{
		"injected header":    `{"version":1,"credentials":[{"url":"https://h.example","token":"mp_a\nX: y"}]}`,
		"http URL":           `{"version":1,"credentials":[{"url":"http://h.example","token":"mp_a"}]}`,
		"URL with a newline": `{"version":1,"credentials":[{"url":"https://h.example/\n\nX: y","token":"mp_a"}]}`,
		"unnormalised URL":   `{"version":1,"credentials":[{"url":"https://H.example/","token":"mp_a"}]}`,
		"other version":      `{"version":2,"credentials":[]}`,
		"not JSON":           `machine h.example password x`,
	} {
		path := filepath.Join(t.TempDir(), FileName)
		if err := os.WriteFile(path, []byte(doc), 0o600); err != nil {
			t.Fatal(err)
		}
		if got, err := run(t, path, ""); err == nil || got != "" {
			t.Errorf("%s: Run = %q, %v; want an error and no output", name, got, err)
		}
	}
}

func TestFormatRefusesBadEntries(t *testing.T) {
	var out bytes.Buffer
	for _, c := range []Credential{{URL: "http://h.example", Token: tokA}, {URL: "https://h.example\nX: 1", Token: tokA}, {URL: "https://h.example", Token: "a b"}} {
		if err := Format(&out, []Credential{{URL: "https://ok.example", Token: tokA}, c}); !errors.Is(err, ErrInvalid) {
			t.Errorf("Format(%q) = %v, want ErrInvalid", c.URL, err)
		}
	}
	if out.Len() != 0 {
		t.Errorf("a refused Format wrote %q", out.String())
	}
}

func TestReadTokenAndString(t *testing.T) {
	for in, want := range map[string]string{tokA + "\n": tokA, "  " + tokA + " \r\n": tokA, tokA: tokA, tokA + "\nsecond line": tokA} {
		if got, err := ReadToken(strings.NewReader(in)); err != nil || got != want {
			t.Errorf("ReadToken(%q) = %q, %v", in, got, err)
		}
	}
	for _, in := range []string{"", "\n", "a b\n"} {
		if _, err := ReadToken(strings.NewReader(in)); !errors.Is(err, ErrInvalid) {
			t.Errorf("ReadToken(%q) = %v, want ErrInvalid", in, err)
		}
	}
	if s := (Credential{URL: "https://h.example", Token: tokA}).String(); strings.Contains(s, tokA) {
		t.Errorf("Credential.String shows the token: %s", s)
	}
}

func TestDefaultPath(t *testing.T) {
	home := t.TempDir()
	t.Setenv("XDG_CONFIG_HOME", filepath.Join(home, "cfg"))
	t.Setenv("HOME", home)
	t.Setenv("AppData", filepath.Join(home, "cfg"))
	p, err := DefaultPath()
	if err != nil {
		t.Fatal(err)
	}
	dir, err := os.UserConfigDir()
	if err != nil {
		t.Fatal(err)
	}
	if p != filepath.Join(dir, "modproxy", FileName) {
		t.Errorf("DefaultPath = %s", p)
	}
}
