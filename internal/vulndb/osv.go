package vulndb

import (
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"golang.org/x/mod/semver"

	"github.com/modproxy/modproxy/internal/artifact"
	"github.com/modproxy/modproxy/internal/policy"
)

// The database's documents, as far as modproxy reads them. Unknown fields
// are ignored: the files are stored and served as they came.

type dbMeta struct {
	Modified time.Time `json:"modified"`
}

type moduleMeta struct {
	Path  string       `json:"path"`
	Vulns []moduleVuln `json:"vulns"`
}

type moduleVuln struct {
	ID       string    `json:"id"`
	Modified time.Time `json:"modified"`
	Fixed    string    `json:"fixed,omitempty"`
}

type osvEntry struct {
	ID       string        `json:"id"`
	Modified time.Time     `json:"modified"`
	Aliases  []string      `json:"aliases"`
	Summary  string        `json:"summary"`
	Affected []osvAffected `json:"affected"`
}

type osvAffected struct {
	Package struct {
		Name      string `json:"name"`
		Ecosystem string `json:"ecosystem"`
	} `json:"package"`
	Ranges []osvRange `json:"ranges"`
}

type osvRange struct {
	Type   string     `json:"type"`
	Events []osvEvent `json:"events"`
}

type osvEvent struct {
	Introduced string `json:"introduced,omitempty"`
	Fixed      string `json:"fixed,omitempty"`
}

// parseDB parses index/db.json.
func parseDB(b []byte) (dbMeta, error) {
	var m dbMeta
	if err := json.Unmarshal(b, &m); err != nil {
		return m, fmt.Errorf("%s: %w", artifact.VulnDBIndex, err)
	}
	if m.Modified.IsZero() {
		return m, fmt.Errorf("%s: no modified time", artifact.VulnDBIndex)
	}
	return m, nil
}

// parseModules parses index/modules.json and returns every ID it names
// with its modified time (the latest where the ID is listed more than once).
func parseModules(b []byte) (map[string]time.Time, error) {
	var mods []moduleMeta
	if err := json.Unmarshal(b, &mods); err != nil {
		return nil, fmt.Errorf("%s: %w", artifact.VulnModulesIndex, err)
	}
	ids := map[string]time.Time{}
	for _, m := range mods {
		if m.Path == "" {
			return nil, fmt.Errorf("%s: a module without a path", artifact.VulnModulesIndex)
		}
		for _, v := range m.Vulns {
			if !artifact.ValidVulnID(v.ID) {
				return nil, fmt.Errorf("%s: module %s: %q is not a vulnerability ID", artifact.VulnModulesIndex, m.Path, v.ID)
			}
			if v.Modified.After(ids[v.ID]) || ids[v.ID].IsZero() {
				ids[v.ID] = v.Modified
			}
		}
	}
	return ids, nil
}

// parseEntry parses the OSV entry stored as ID/id.json and converts its
// SEMVER ranges to the policy's form.
func parseEntry(id string, b []byte) (entryMeta, error) {
	var e osvEntry
	if err := json.Unmarshal(b, &e); err != nil {
		return entryMeta{}, fmt.Errorf("%s: %w", artifact.VulnEntryPath(id), err)
	}
	if e.ID != id {
		return entryMeta{}, fmt.Errorf("%s: the entry's id is %q", artifact.VulnEntryPath(id), e.ID)
	}
	m := entryMeta{ID: id, Modified: e.Modified, Aliases: e.Aliases, Summary: e.Summary}
	for _, a := range e.Affected {
		if a.Package.Name == "" {
			return entryMeta{}, fmt.Errorf("%s: an affected package without a name", artifact.VulnEntryPath(id))
		}
		am := affectedMeta{Module: a.Package.Name}
		for _, r := range a.Ranges {
			if r.Type != "SEMVER" {
				continue
			}
			pr, err := convertRange(r.Events)
			if err != nil {
				return entryMeta{}, fmt.Errorf("%s: module %s: %w", artifact.VulnEntryPath(id), a.Package.Name, err)
			}
			am.Ranges = append(am.Ranges, pr)
		}
		m.Affected = append(m.Affected, am)
	}
	return m, nil
}

// convertRange turns OSV SEMVER events (versions without "v") into a
// policy.Range with canonical "vX.Y.Z" versions; introduced "0" stays "0".
func convertRange(events []osvEvent) (policy.Range, error) {
	var r policy.Range
	for _, ev := range events {
		switch {
		case ev.Introduced != "" && ev.Fixed != "":
			return r, errors.New("an event with both introduced and fixed")
		case ev.Introduced == "0":
			r.Events = append(r.Events, policy.Event{Introduced: "0"})
		case ev.Introduced != "":
			v, err := canonical(ev.Introduced)
			if err != nil {
				return r, err
			}
			r.Events = append(r.Events, policy.Event{Introduced: v})
		case ev.Fixed != "":
			v, err := canonical(ev.Fixed)
			if err != nil {
				return r, err
			}
			r.Events = append(r.Events, policy.Event{Fixed: v})
		}
	}
	return r, nil
}

// canonical is the Go form of an OSV SEMVER version: "1.2.3" -> "v1.2.3".
func canonical(osv string) (string, error) {
	v := "v" + osv
	if !semver.IsValid(v) {
		return "", fmt.Errorf("%q is not a semantic version", osv)
	}
	return v, nil
}
