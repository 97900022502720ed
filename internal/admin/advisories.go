package admin

import (
	"context"
	"fmt"
	"net/http"
	"net/url"
	"strings"
	"time"

	"github.com/modproxy/modproxy/internal/policy"
	"github.com/modproxy/modproxy/internal/vulndb"
)

// AdvisoryBackend is the optional part of a Backend that answers "who is
// affected" from the vulnerability database (/api/advisories). A Backend
// without it answers those endpoints with 404.
type AdvisoryBackend interface {
	// Advisories lists the advisories that affect a cached version.
	Advisories(ctx context.Context) (Advisories, error)
	// Advisory returns one advisory with the cached versions it affects
	// (none is an empty list); an unknown ID wraps ErrNotFound.
	Advisory(ctx context.Context, id string) (Advisory, error)
}

// Advisories is the answer of GET /api/advisories.
type Advisories struct {
	Database   VulnDatabase `json:"database"`
	Advisories []Advisory   `json:"advisories"`
}

// VulnDatabase describes the vulnerability data answers come from.
type VulnDatabase struct {
	Generation string    `json:"generation"` // "" without a database
	Source     string    `json:"source,omitempty"`
	Modified   time.Time `json:"modified"`    // the database's own modified time
	LastUpdate time.Time `json:"last_update"` // the last successful refresh or import
	Entries    int       `json:"entries"`
}

// Advisory is one advisory with the cached versions it affects.
type Advisory struct {
	ID       string           `json:"id"`
	Aliases  []string         `json:"aliases,omitempty"`
	Summary  string           `json:"summary,omitempty"`
	Modified time.Time        `json:"modified"`
	Modules  []AffectedModule `json:"modules"`
	// Versions are the cached versions inside its ranges.
	Versions []AffectedVersion `json:"versions"`
}

// AffectedModule is a module the advisory names, with its affected
// ranges as text (">=v1.2.0 <v1.2.3", "<v1.1.0", ">=v2.0.0").
type AffectedModule struct {
	Module string   `json:"module"`
	Ranges []string `json:"ranges"`
}

// AffectedVersion is a cached version an advisory affects and when it
// was last downloaded (and by whom, once identities are recorded).
type AffectedVersion struct {
	Module       string    `json:"module"`
	Version      string    `json:"version"`
	LastDownload time.Time `json:"last_download"`
	Identity     string    `json:"identity"`
}

const advisoriesPath = "/api/advisories"

func (h *handler) advisoryRoutes() map[string]route {
	get := func(f apiFunc) route { return newRoute(map[string]apiFunc{http.MethodGet: f}) }
	return map[string]route{
		advisoriesPath:       get(h.advisories),
		advisoriesPath + "/": get(h.advisory), // /api/advisories/ID
	}
}

// prefixRoute finds the route of a path with an argument in it.
func (h *handler) prefixRoute(p string) (route, bool) {
	if strings.HasPrefix(p, advisoriesPath+"/") {
		rt, ok := h.routes[advisoriesPath+"/"]
		return rt, ok
	}
	return route{}, false
}

func (h *handler) advisoryBackend() (AdvisoryBackend, error) {
	ab, ok := h.b.(AdvisoryBackend)
	if !ok {
		return nil, fmt.Errorf("%w: this server has no vulnerability database", ErrNotFound)
	}
	return ab, nil
}

func (h *handler) advisories(r *http.Request) (any, error) {
	ab, err := h.advisoryBackend()
	if err != nil {
		return nil, err
	}
	return ab.Advisories(r.Context())
}

func (h *handler) advisory(r *http.Request) (any, error) {
	ab, err := h.advisoryBackend()
	if err != nil {
		return nil, err
	}
	id := strings.TrimPrefix(r.URL.Path, advisoriesPath+"/")
	if id == "" || strings.Contains(id, "/") {
		return nil, fmt.Errorf("%w: want /api/advisories/ID", ErrNotFound)
	}
	return ab.Advisory(r.Context(), id)
}

// Advisories returns GET /api/advisories.
func (c *Client) Advisories(ctx context.Context) (Advisories, error) {
	return call[Advisories](ctx, c, http.MethodGet, advisoriesPath, nil)
}

// Advisory returns GET /api/advisories/ID.
func (c *Client) Advisory(ctx context.Context, id string) (Advisory, error) {
	return call[Advisory](ctx, c, http.MethodGet, advisoriesPath+"/"+url.PathEscape(id), nil)
}

// AdvisoryOf maps an exposure of the vulnerability database to its wire form.
func AdvisoryOf(e vulndb.Exposure) Advisory {
	a := Advisory{ID: e.ID, Aliases: e.Aliases, Summary: e.Summary, Modified: e.Modified, Modules: []AffectedModule{}, Versions: []AffectedVersion{}}
	for _, m := range e.Affected {
		am := AffectedModule{Module: m.Module, Ranges: []string{}}
		for _, r := range m.Ranges {
			am.Ranges = append(am.Ranges, rangeText(r))
		}
		a.Modules = append(a.Modules, am)
	}
	for _, v := range e.Versions {
		a.Versions = append(a.Versions, AffectedVersion{Module: v.Module, Version: v.Version, LastDownload: v.LastAccess, Identity: v.Identity})
	}
	return a
}

// VulnDatabaseOf maps the database's status to its wire form.
func VulnDatabaseOf(s vulndb.Status) VulnDatabase {
	return VulnDatabase{Generation: s.Generation, Source: s.Source, Modified: s.Modified, LastUpdate: s.LastSuccess, Entries: s.Entries}
}

// rangeText writes a range's intervals: ">=v1.2.0 <v1.2.3", "<v1.1.0"
// (from the start), ">=v2.0.0" (not fixed); several joined with ", ".
func rangeText(r policy.Range) string {
	var parts []string
	open := ""
	for _, ev := range r.Events {
		if ev.Fixed == "" {
			open = ev.Introduced
			if open == "" {
				open = "0"
			}
			continue
		}
		if open == "0" || open == "" {
			parts = append(parts, "<"+ev.Fixed)
		} else {
			parts = append(parts, ">="+open+" <"+ev.Fixed)
		}
		open = "-"
	}
	switch open {
	case "-", "":
	case "0":
		parts = append(parts, "all versions")
	default:
		parts = append(parts, ">="+open)
	}
	return strings.Join(parts, ", ")
}
