package proxyclient

import (
	"net/url"
	"testing"
)

func TestSiteURL(t *testing.T) {
	base, err := url.Parse("https://site.example/dl")
	if err != nil {
		t.Fatal(err)
	}
	for p, want := range map[string]string{
		"?mode=json":                  "https://site.example/dl/?mode=json",
		"?mode=json&include=all":      "https://site.example/dl/?mode=json&include=all",
		"go1.22.0.linux-amd64.tar.gz": "https://site.example/dl/go1.22.0.linux-amd64.tar.gz",
	} {
		if got, err := siteURL(base, p); err != nil || got != want {
			t.Errorf("siteURL(%q) = %q, %v; want %q", p, got, err, want)
		}
	}
	for _, p := range []string{"", "../x", ".hidden", "a/b", "a%2fb", "?q=<x>", "x?a=b?c", "go 1.tar.gz"} {
		if got, err := siteURL(base, p); err == nil {
			t.Errorf("siteURL(%q) = %q, want an error", p, got)
		}
	}
}
