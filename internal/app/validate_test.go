package app

import (
	"errors"
	"strings"
	"testing"

	"github.com/modproxy/modproxy/internal/config"
)

// TestValidate: upstream lists and version ranges, which config leaves
// alone, are checked here; errors name the key and keep the parser's.
func TestValidate(t *testing.T) {
	for _, tc := range []struct {
		name    string
		edit    func(c *config.Config)
		wantKey string
		wantMsg string // in the text: the parser's reason
	}{
		{"doubled separator", func(c *config.Config) { c.Upstream = "https://a.example,,https://b.example" }, "upstream", "doubled separator"},
		{"ftp upstream", func(c *config.Config) { c.Upstream = "ftp://a.example" }, "upstream", "only http and https"},
		{"route upstream", func(c *config.Config) {
			c.Routes = []config.Route{{Match: "corp.example.com", Upstream: "direct"}, {Match: "x.example", Upstream: "gopher://x"}}
		}, "route[1].upstream", "only http and https"},
		{"deny range", func(c *config.Config) {
			c.Deny = []config.DenyRule{{Match: "example.com/a", Versions: ">=banana", Reason: "r"}}
		}, "deny[0].versions", "not a semantic version"},
		{"namespace upstream", func(c *config.Config) {
			c.Namespaces = []config.Namespace{{Name: "dev", Upstream: "ftp://c.example"}}
		}, "namespace[0].upstream", "only http and https"},
		{"namespace route", func(c *config.Config) {
			c.Namespaces = []config.Namespace{{Name: "dev", Routes: []config.Route{{Match: "corp.example.com", Upstream: "https://a.example||direct"}}}}
		}, "namespace[0].route[0]", "doubled separator"},
		{"namespace deny", func(c *config.Config) {
			c.Namespaces = []config.Namespace{{Name: "dev", Deny: []config.DenyRule{{Match: "example.com/a", Versions: "<v1.x", Reason: "r"}}}}
		}, "namespace[0].deny[0]", "not a semantic version"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c := config.Default()
			c.Upstream = "https://proxy.example,direct"
			tc.edit(&c)
			if err := c.Validate(); err != nil {
				t.Fatalf("config's syntax check: %v", err)
			}
			err := Validate(c)
			var ce *config.Error
			if !errors.As(err, &ce) || ce.Key != tc.wantKey || ce.Err == nil || !strings.Contains(err.Error(), tc.wantMsg) {
				t.Errorf("Validate = %v, want a *config.Error for %s saying %q", err, tc.wantKey, tc.wantMsg)
			}
		})
	}
	c := config.Default()
	c.Upstream = "https://proxy.example|https://backup.example,direct,off"
	c.Routes = []config.Route{{Match: "corp.example.com", Upstream: "direct"}}
	c.Deny = []config.DenyRule{{Match: "example.com/a", Versions: ">=v1.2.0 <v1.2.5", Reason: "r", Status: 410}}
	if err := Validate(c); err != nil {
		t.Errorf("valid configuration: %v", err)
	}
}

// TestValidateExampleFile: the example configuration passes both checks.
func TestValidateExampleFile(t *testing.T) {
	c := config.Default()
	if err := c.LoadFile("../../deploy/modproxy.toml"); err != nil {
		t.Fatal(err)
	}
	if err := c.Validate(); err != nil {
		t.Fatal(err)
	}
	if err := Validate(c); err != nil {
		t.Fatal(err)
	}
}
