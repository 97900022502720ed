package upstream

import "testing"

func TestRedact(t *testing.T) {
	for _, tc := range []struct{ in, want string }{
		{"https://proxy.example.com/base", "https://proxy.example.com/base"},
		{"https://user:pass@proxy.example.com/base", "https://xxxxx@proxy.example.com/base"},
		{"https://token@proxy.example.com", "https://xxxxx@proxy.example.com"},
		{"http://user:p@ss@proxy.example.com:8080/x", "http://xxxxx@proxy.example.com:8080/x"},   // unescaped "@": does not parse
		{"user:pass@proxy.example.com", "xxxxx@proxy.example.com"},                               // no scheme
		{"https://proxy.example.com/sumdb/x@v1.0.0", "https://proxy.example.com/sumdb/x@v1.0.0"}, // "@" in the path
		{"https://proxy.example.com?u=a@b", "https://proxy.example.com?u=a@b"},
		{"direct", "direct"},
		{"", ""},
	} {
		if got := RedactURL(tc.in); got != tc.want {
			t.Errorf("RedactURL(%q) = %q, want %q", tc.in, got, tc.want)
		}
	}
	for _, tc := range []struct{ in, want string }{
		{"https://a:b@one.example.com,https://two.example.com|https://tok@three.example.com,direct",
			"https://xxxxx@one.example.com,https://two.example.com|https://xxxxx@three.example.com,direct"},
		{"https://one.example.com, user:pw@two.example.com", "https://one.example.com, xxxxx@two.example.com"},
		{"off", "off"},
	} {
		if got := RedactList(tc.in); got != tc.want {
			t.Errorf("RedactList(%q) = %q, want %q", tc.in, got, tc.want)
		}
	}
}
