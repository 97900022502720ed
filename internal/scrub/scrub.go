// Package scrub re-hashes the module zips and go.mod files in a store and
// compares them with the hashes recorded at admission (KEY.h1) and with
// the checksum database records cached in the store
// (sumdb/NAME/lookup/M@V). It needs no network. With Repair, every bad
// object is moved to quarantine (and its recorded hash removed), so that
// the next request fetches and verifies it again.
package scrub

import (
	"context"
	"fmt"
	"io"
	"os"
	"slices"
	"strings"

	"golang.org/x/mod/module"
	"golang.org/x/mod/sumdb/tlog"

	"github.com/modproxy/modproxy/internal/artifact"
	"github.com/modproxy/modproxy/internal/audit"
	"github.com/modproxy/modproxy/internal/checksum"
	"github.com/modproxy/modproxy/internal/storage"
)

// Store is what a scrub needs from the store.
type Store interface {
	Open(ctx context.Context, key string) (storage.Object, error)
	Delete(ctx context.Context, key string) error
	Walk(ctx context.Context, prefix string, fn func(storage.Info) error) error
}

// Quarantine keeps bad objects.
type Quarantine interface {
	Keep(name string, r io.Reader) (string, error)
}

// Options configures a scrub.
type Options struct {
	Store      Store
	SumDBNames []string // databases whose cached lookups are consulted
	Repair     bool
	Quarantine Quarantine // required with Repair
	Audit      *audit.Log
	TempDir    string
	// Progress, when set, is called after each object with the number done
	// and the total.
	Progress func(done, total int)
	// Hosted, when set, is the private log of hosted modules: their objects
	// are compared with its hashes ("log-mismatch"; "not-in-log" when it
	// holds no record of the version).
	Hosted HostedLog
}

// HostedLog gives the hashes the private log holds for hosted modules.
type HostedLog interface {
	IsHosted(modulePath string) bool
	// Lookup returns the logged h1 of version's zip or (goMod) go.mod.
	Lookup(modulePath, version string, goMod bool) (string, bool)
	// Published lists the logged versions that are not purged: their zip
	// and go.mod must be in the store ("missing" otherwise).
	Published() []module.Version
}

// Problem is one bad object.
type Problem struct {
	Key      string `json:"key"`
	Module   string `json:"module"`
	Version  string `json:"version"`
	Problem  string `json:"problem"` // "unreadable", "recorded-mismatch", "database-mismatch", "unverifiable", "log-mismatch", "not-in-log", "missing"
	Detail   string `json:"detail,omitempty"`
	Got      string `json:"got,omitempty"`
	Recorded string `json:"recorded,omitempty"`
	Database string `json:"database,omitempty"`
	Log      string `json:"log,omitempty"`      // the hosted log's hash
	Repaired string `json:"repaired,omitempty"` // quarantine path when repaired
}

// Report is the result of a scrub.
type Report struct {
	Checked  int       `json:"checked"`
	Bytes    int64     `json:"bytes"`
	Problems []Problem `json:"problems"`
}

// Run scrubs the store. It returns an error only when the scrub itself
// could not proceed; bad objects are reported in the Report.
func Run(ctx context.Context, opts Options) (Report, error) {
	var keys []storage.Info
	err := opts.Store.Walk(ctx, "", func(i storage.Info) error {
		if strings.HasPrefix(i.Key, "sumdb/") {
			return nil
		}
		if strings.HasSuffix(i.Key, ".zip") || strings.HasSuffix(i.Key, ".mod") {
			keys = append(keys, i)
		}
		return nil
	})
	if err != nil {
		return Report{}, fmt.Errorf("scrub: listing the store: %w", err)
	}
	slices.SortFunc(keys, func(a, b storage.Info) int { return strings.Compare(a.Key, b.Key) })
	rep := Report{Problems: []Problem{}}
	for i, info := range keys {
		if err := ctx.Err(); err != nil {
			return rep, err
		}
		req, err := artifact.Parse(info.Key)
		if err != nil || (req.Kind != artifact.Zip && req.Kind != artifact.Mod) {
			continue
		}
		rep.Checked++
		rep.Bytes += info.Size
		if p, bad := check(ctx, opts, req); bad {
			if opts.Repair {
				p.Repaired = repair(ctx, opts, req, p)
			}
			rep.Problems = append(rep.Problems, p)
		}
		if opts.Progress != nil {
			opts.Progress(i+1, len(keys))
		}
	}
	if opts.Hosted != nil {
		rep.Problems = append(rep.Problems, missingHosted(opts.Hosted, keys)...)
	}
	return rep, nil
}

// missingHosted reports published hosted versions whose zip or go.mod is
// not in the store (stored is the walk's list of objects): the store
// holds their only copy.
func missingHosted(h HostedLog, stored []storage.Info) []Problem {
	have := make(map[string]bool, len(stored))
	for _, i := range stored {
		have[i.Key] = true
	}
	var out []Problem
	for _, mv := range h.Published() {
		ep, err1 := module.EscapePath(mv.Path)
		ev, err2 := module.EscapeVersion(mv.Version)
		if err1 != nil || err2 != nil {
			continue
		}
		for _, ext := range []string{".zip", ".mod"} {
			if key := ep + "/@v/" + ev + ext; !have[key] {
				logged, _ := h.Lookup(mv.Path, mv.Version, ext == ".mod")
				out = append(out, Problem{Key: key, Module: mv.Path, Version: mv.Version, Problem: "missing", Log: logged,
					Detail: "a published hosted version's file is not in the store; publishing the same bytes again restores it"})
			}
		}
	}
	return out
}

func check(ctx context.Context, opts Options, req artifact.Request) (Problem, bool) {
	p := Problem{Key: req.Key, Module: req.Module, Version: req.Version}
	got, err := hashObject(ctx, opts, req)
	if err != nil {
		p.Problem, p.Detail = "unreadable", err.Error()
		return p, true
	}
	p.Got = got
	recorded, _ := storage.ReadSmall(ctx, opts.Store, req.Key+".h1", 4096)
	if p.Recorded = strings.TrimSpace(string(recorded)); !checksum.ValidH1(p.Recorded) {
		p.Recorded = "" // none, or a sidecar a crash left empty or zero-filled
	}
	p.Database = dbHash(ctx, opts, req)
	if h := opts.Hosted; h != nil && h.IsHosted(req.Module) {
		logged, ok := h.Lookup(req.Module, req.Version, req.Kind == artifact.Mod)
		p.Log = logged
		switch {
		case !ok:
			p.Problem, p.Detail = "not-in-log", "a hosted module's object that the private log has no record of"
			return p, true
		case logged != got:
			p.Problem = "log-mismatch"
			return p, true
		}
	}
	switch {
	case p.Recorded != "" && p.Recorded != got:
		p.Problem = "recorded-mismatch"
	case p.Database != "" && p.Database != got:
		p.Problem = "database-mismatch"
	case p.Recorded == "" && p.Database == "":
		p.Problem = "unverifiable"
		p.Detail = "no hash was recorded at admission and no checksum database record is cached"
	default:
		return p, false
	}
	return p, true
}

func hashObject(ctx context.Context, opts Options, req artifact.Request) (string, error) {
	obj, err := opts.Store.Open(ctx, req.Key)
	if err != nil {
		return "", err
	}
	defer obj.Close()
	if req.Kind == artifact.Mod {
		data, err := io.ReadAll(obj)
		if err != nil {
			return "", err
		}
		return checksum.HashGoMod(data)
	}
	ra, ok := obj.(io.ReaderAt)
	if !ok {
		f, err := os.CreateTemp(opts.TempDir, "scrub-*.zip")
		if err != nil {
			return "", err
		}
		defer os.Remove(f.Name())
		defer f.Close()
		if _, err := io.Copy(f, obj); err != nil {
			return "", err
		}
		ra = f
	}
	return checksum.HashZip(ra, obj.Info().Size)
}

// dbHash returns the hash a cached checksum database record gives, or "".
func dbHash(ctx context.Context, opts Options, req artifact.Request) string {
	epath, err1 := module.EscapePath(req.Module)
	evers, err2 := module.EscapeVersion(req.Version)
	if err1 != nil || err2 != nil {
		return ""
	}
	vers := req.Version
	if req.Kind == artifact.Mod {
		vers += "/go.mod"
	}
	prefix := req.Module + " " + vers + " "
	for _, name := range opts.SumDBNames {
		rec, err := storage.ReadSmall(ctx, opts.Store, "sumdb/"+name+"/lookup/"+epath+"@"+evers, 1<<20)
		if err != nil {
			continue
		}
		_, text, _, err := tlog.ParseRecord(rec)
		if err != nil {
			continue
		}
		for line := range strings.SplitSeq(string(text), "\n") {
			if h, ok := strings.CutPrefix(line, prefix); ok {
				return h
			}
		}
	}
	return ""
}

// repair moves a bad object to quarantine and deletes it (and its recorded
// hash) from the store. It returns the quarantine path, or "" on failure.
func repair(ctx context.Context, opts Options, req artifact.Request, p Problem) string {
	if opts.Quarantine == nil {
		return ""
	}
	obj, err := opts.Store.Open(ctx, req.Key)
	if err != nil {
		return ""
	}
	qpath, err := opts.Quarantine.Keep(req.Key, obj)
	size := obj.Info().Size
	obj.Close()
	if err != nil {
		return ""
	}
	if err := opts.Store.Delete(ctx, req.Key); err != nil {
		return ""
	}
	_ = opts.Store.Delete(ctx, req.Key+".h1")
	hashes := map[string]string{"got": p.Got}
	if p.Recorded != "" {
		hashes["recorded"] = p.Recorded
	}
	if p.Database != "" {
		hashes["database"] = p.Database
	}
	if p.Log != "" {
		hashes["log"] = p.Log
	}
	_ = opts.Audit.Record(audit.Event{Actor: "scrub", Action: "quarantine", Target: req.Module + "@" + req.Version,
		Reason: p.Problem + ": " + req.Key + " moved to " + qpath, Bytes: size, Hashes: hashes})
	return qpath
}
