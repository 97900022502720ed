package artifact

import "strings"

// Vulnerability database paths, relative to the database's root (the
// vulndb API): the two indexes and one OSV entry per ID.
const (
	VulnDBIndex      = "index/db.json"
	VulnModulesIndex = "index/modules.json"
)

// ParseVuln validates a vulnerability database path relative to the
// database: "index/db.json", "index/modules.json" or "ID/ID.json", where
// ID is a vulnerability ID (ValidVulnID). It returns the path and, for an
// entry, its ID. Anything else is an error wrapping ErrInvalid. The
// ".json.gz" forms are the caller's to strip.
func ParseVuln(p string) (id string, err error) {
	switch p {
	case VulnDBIndex, VulnModulesIndex:
		return "", nil
	}
	rest, ok := strings.CutPrefix(p, "ID/")
	if ok {
		if id, ok = strings.CutSuffix(rest, ".json"); ok && ValidVulnID(id) {
			return id, nil
		}
	}
	return "", invalid("%q is not a vulnerability database path (index/db.json, index/modules.json, ID/ID.json)", p)
}

// ValidVulnID reports whether id can be a vulnerability ID: 1 to 64
// letters, digits, '-', '_' and '.', starting with a letter or digit
// ("GO-2024-1234"). Such an ID is safe as one path element.
func ValidVulnID(id string) bool {
	if id == "" || len(id) > 64 {
		return false
	}
	for i, c := range []byte(id) {
		switch {
		case c >= 'A' && c <= 'Z', c >= 'a' && c <= 'z', c >= '0' && c <= '9':
		case i > 0 && (c == '-' || c == '_' || c == '.'):
		default:
			return false
		}
	}
	return !strings.Contains(id, "..")
}

// VulnEntryPath is the database path of the entry for id.
func VulnEntryPath(id string) string { return "ID/" + id + ".json" }
