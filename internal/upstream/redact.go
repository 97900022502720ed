package upstream

import "strings"

// RedactURL returns s, a URL, with the userinfo of its authority replaced
// by "xxxxx": "https://user:pass@host/p" becomes "https://xxxxx@host/p".
// The user name goes too, because it is often the secret itself (a token
// alone, or a token with a dummy password). s need not parse: an entry
// without a scheme ("user:pass@host") and malformed text are redacted the
// same way, and text without userinfo is returned unchanged. Everything
// that shows an upstream or database URL (logs at every level, errors,
// /readyz, metrics labels, the admin API) shows it through RedactURL.
func RedactURL(s string) string {
	start := len(s) - len(strings.TrimLeft(s, " \t"))
	if i := strings.Index(s, "://"); i >= 0 {
		start = i + len("://")
	}
	end := len(s)
	if i := strings.IndexAny(s[start:], "/?#"); i >= 0 {
		end = start + i
	}
	at := strings.LastIndexByte(s[start:end], '@')
	if at < 0 {
		return s
	}
	return s[:start] + "xxxxx" + s[start+at:]
}

// RedactList returns a list in GOPROXY syntax with RedactURL applied to
// every entry; separators are kept.
func RedactList(list string) string {
	var b strings.Builder
	for {
		i := strings.IndexAny(list, ",|")
		if i < 0 {
			b.WriteString(RedactURL(list))
			return b.String()
		}
		b.WriteString(RedactURL(list[:i]))
		b.WriteByte(list[i])
		list = list[i+1:]
	}
}
