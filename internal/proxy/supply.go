package proxy

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"hash/maphash"
	"io"
	iofs "io/fs"
	"log/slog"
	"strings"
	"sync"
	"time"

	"golang.org/x/mod/modfile"
	"golang.org/x/mod/module"
	"golang.org/x/mod/semver"
	"golang.org/x/sync/errgroup"

	"github.com/modproxy/modproxy/internal/artifact"
	"github.com/modproxy/modproxy/internal/audit"
	"github.com/modproxy/modproxy/internal/errclass"
	"github.com/modproxy/modproxy/internal/event"
	"github.com/modproxy/modproxy/internal/metrics"
	"github.com/modproxy/modproxy/internal/modrefs"
	"github.com/modproxy/modproxy/internal/policy"
)

// Supply is the supply-chain policy a Service enforces (package policy
// decides; the service gathers the facts and applies the decisions).
type Supply struct {
	Policy policy.Policy
	// Advisories is the vulnerability data; nil: none (no version is
	// vulnerable, no version is a fix).
	Advisories policy.Source
	// Namespace labels metrics, logs, audit records and events ("" the
	// root).
	Namespace string
	// Events receives an event.PolicyBlock for a refused download, at
	// most one per namespace, module@version and reason every 10 minutes
	// (metrics and logs count every refusal); nil discards them.
	Events event.Sink
	// Identity, when set, names who asked (from the request's context)
	// in events, audit records and logs.
	Identity func(ctx context.Context) string
}

// PolicyNote is what a served version's warnings add to the answer
// (response headers): the advisories it is affected by and the rationale
// of its retraction, each "" when none.
type PolicyNote struct {
	Advisories string // comma-separated IDs
	Retracted  string // the rationale, or "retracted" when it has none
}

// infoConcurrency bounds the .info reads one list request makes to learn
// its versions' times (each read is cached for good: .info is immutable).
const infoConcurrency = 8

// factsCacheSize bounds the remembered times and retractions; when full,
// they are forgotten and read again (from the store) as needed.
const factsCacheSize = 1 << 14

// supply is a Service's policy enforcement; nil when the policy checks
// nothing, so that a Service without a policy pays one nil check.
type supply struct {
	s      *Service
	p      *policy.Policy
	src    policy.Source
	ns     string
	events event.Sink
	who    func(ctx context.Context) string
	m      *metrics.Metrics
	log    *slog.Logger
	audit  *audit.Log

	times   memo[time.Time]           // module@version -> .info Time (zero: unknown)
	retract memo[[]policy.Retraction] // module@highest -> its go.mod's retractions
	seen    seenState                 // when versions were first seen (seen.go)
	sent    *eventLimiter             // policy blocks recently sent to events
}

// memo remembers immutable facts, at most factsCacheSize (then it
// forgets them all). It is safe for concurrent use.
type memo[T any] struct {
	mu sync.Mutex
	m  map[string]T
}

func (m *memo[T]) get(k string) (T, bool) {
	m.mu.Lock()
	defer m.mu.Unlock()
	v, ok := m.m[k]
	return v, ok
}

func (m *memo[T]) put(k string, v T) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.m == nil || len(m.m) >= factsCacheSize {
		m.m = map[string]T{}
	}
	m.m[k] = v
}

func newSupply(s *Service, o *Supply) *supply {
	if o == nil || !o.Policy.On() {
		return nil
	}
	ev := o.Events
	if ev == nil {
		ev = event.Discard{}
	}
	who := o.Identity
	if who == nil {
		who = func(context.Context) string { return "" }
	}
	u := &supply{s: s, p: &o.Policy, src: o.Advisories, ns: o.Namespace, events: ev, who: who, m: s.opts.Metrics,
		log: s.log.With("namespace", o.Namespace), audit: s.opts.Audit, sent: newEventLimiter(policyEventInterval, policyEventKeys)}
	u.seen.seed = maphash.MakeSeed()
	return u
}

// get answers req under the policy: a refused zip (or .mod with
// block_mod) is a *policy.BlockedError; lists leave out hidden versions;
// @latest and queries answer a version that passes.
func (u *supply) get(ctx context.Context, req artifact.Request) (*Result, error) {
	switch req.Kind {
	case artifact.Zip:
		return u.download(ctx, req, policy.Zip)
	case artifact.Mod:
		if u.p.BlockMod {
			return u.download(ctx, req, policy.Mod)
		}
	case artifact.List:
		return u.list(ctx, req)
	case artifact.Latest, artifact.Query:
		return u.latest(ctx, req)
	}
	return u.s.serve(ctx, req)
}

// download checks a zip or .mod before it is fetched or served.
func (u *supply) download(ctx context.Context, req artifact.Request, a policy.Artifact) (*Result, error) {
	if err := u.s.checkRules(req); err != nil {
		return nil, err // a deny rule answers first, as without a policy
	}
	f, err := u.facts(ctx, req.Module, req.Version, true)
	if err != nil {
		return nil, err
	}
	d := u.p.Decide(f)
	berr := d.Refuses(u.p, a, req.Module, req.Version)
	u.record(ctx, req, &d, berr)
	if berr != nil {
		return nil, berr
	}
	res, err := u.s.serve(ctx, req)
	if err != nil {
		return nil, err
	}
	if ids, r := d.Warnings(); len(ids) > 0 || r != nil {
		n := &PolicyNote{Advisories: strings.Join(ids, ",")}
		if r != nil {
			n.Retracted = strings.Join(strings.Fields(r.Rationale), " ")
			if n.Retracted == "" {
				n.Retracted = "retracted"
			}
		}
		res.Policy = n
	}
	return res, nil
}

// record logs, counts, audits and reports the findings of a download.
func (u *supply) record(ctx context.Context, req artifact.Request, d *policy.Decision, blocked *policy.BlockedError) {
	target := req.Module + "@" + req.Version
	who := u.who(ctx)
	for _, f := range d.Findings {
		u.m.PolicyDecision(u.ns, string(f.Reason), string(f.Action))
		switch f.Action {
		case policy.ActWarn:
			u.log.Warn("policy warning", "key", req.Key, "reason", f.Reason, "advisories", strings.Join(f.IDs, ","), "rationale", f.Rationale, "identity", who)
		case policy.ActExempt:
			why := "allow_fixes: the version fixes an advisory affecting an earlier version"
			if f.Exemption != nil {
				why = exemptionText(f.Exemption)
			}
			u.log.Info("policy exemption used", "key", req.Key, "reason", f.Reason, "advisories", strings.Join(f.IDs, ","), "exemption", why, "identity", who)
			if u.audit != nil {
				ev := audit.Event{Actor: "policy", Action: "exempt", Target: target, Reason: fmt.Sprintf("%s%s: %s%s", f.Reason, idList(f.IDs), why, forWhom(who))}
				if err := u.audit.Record(ev); err != nil {
					u.log.Error("audit record failed", "err", err)
				}
			}
		}
	}
	if blocked != nil {
		u.log.Warn("policy block", "key", req.Key, "reason", blocked.Reason(), "err", blocked, "identity", who)
		now := u.s.opts.Now()
		if u.sent.allow(u.ns+"\x00"+target+"\x00"+string(blocked.Reason()), now) {
			u.events.Emit(event.Event{Type: event.PolicyBlock, Time: now, Namespace: u.ns, Module: req.Module, Version: req.Version, Identity: who, Reason: blocked.Error()})
		}
	}
}

// forWhom is the audit reason's note of the identity that asked.
func forWhom(who string) string {
	if who == "" {
		return ""
	}
	return " (requested by " + who + ")"
}

func idList(ids []string) string {
	if len(ids) == 0 {
		return ""
	}
	return " " + strings.Join(ids, ",")
}

func exemptionText(e *policy.Exemption) string {
	var b strings.Builder
	if e.Match != "" {
		b.WriteString("match=" + e.Match + " ")
	}
	if e.ID != "" {
		b.WriteString("id=" + e.ID + " ")
	}
	b.WriteString("reason=" + e.Reason)
	if !e.Expires.IsZero() {
		b.WriteString(" expires=" + e.Expires.UTC().Format(time.RFC3339))
	}
	return b.String()
}

// facts gathers what the policy needs about module@version. Vulnerability
// data that cannot be read fails the request (Unavailable) when the
// policy blocks on it, and is taken as none (logged) when it only warns.
// retractions asks for the module's retractions (downloads only); when
// they cannot be read the version is taken as not retracted (logged).
func (u *supply) facts(ctx context.Context, mod, version string, retractions bool) (policy.Facts, error) {
	ctx = context.WithValue(ctx, policyReadKey{}, true)
	f := policy.Facts{Module: mod, Version: version, Now: u.s.opts.Now()}
	advs, err := u.advisories(ctx, mod)
	if err != nil {
		return f, err
	}
	f.Advisories = advs
	if u.p.NeedsTime() {
		t, err := u.infoTime(ctx, mod, version)
		if err != nil {
			return f, err
		}
		f.Time = t
		seen, err := u.firstSeen(ctx, mod, []string{version}, false)
		if err != nil {
			return f, fmt.Errorf("first-seen time of %s@%s: %w", mod, version, err)
		}
		f.FirstSeen = seen[version]
	}
	if retractions && u.p.NeedsRetractions() {
		r, err := u.retractions(ctx, mod)
		if err != nil {
			// The retractions are the author's advice, which the go
			// command also reads itself: a list or go.mod that cannot
			// be read now does not fail a download (a version is never
			// let through a cooldown or an advisory this way).
			u.log.Warn("retractions unreadable; version not checked for them", "module", mod, "version", version, "err", err)
		}
		f.Retractions = r
	}
	return f, nil
}

// advisories reads the module's advisories when the policy needs them.
// Data that cannot be read is an *AdvisoryError when the policy blocks
// vulnerable versions, and none (logged) otherwise.
func (u *supply) advisories(ctx context.Context, mod string) ([]policy.Advisory, error) {
	if !u.p.NeedsAdvisories() || u.src == nil {
		return nil, nil
	}
	advs, err := u.src.Advisories(ctx, mod)
	if err != nil {
		if u.p.Vulnerable == policy.Block {
			return nil, &AdvisoryError{Module: mod, Err: err}
		}
		u.log.Warn("vulnerability data unavailable; versions pass unchecked", "module", mod, "err", err)
		return nil, nil
	}
	return advs, nil
}

// AdvisoryError is vulnerability data that could not be read for a module
// whose versions the policy blocks when vulnerable. Its class is
// Unavailable (retry later).
type AdvisoryError struct {
	Module string
	Err    error
}

func (e *AdvisoryError) Error() string {
	return fmt.Sprintf("vulnerability data for %s could not be read: %v", e.Module, e.Err)
}
func (e *AdvisoryError) Unwrap() error { return e.Err }

// Class implements errclass.Classer.
func (e *AdvisoryError) Class() errclass.Class { return errclass.Unavailable }

// related is the request for another file of module@version (kind Info,
// Mod) or of module (List), answered by the service without the policy.
func related(mod, version string, kind artifact.Kind) (artifact.Request, error) {
	esc, err := module.EscapePath(mod)
	if err != nil {
		return artifact.Request{}, err
	}
	if kind == artifact.List {
		return artifact.Parse(esc + "/@v/list")
	}
	ev, err := module.EscapeVersion(version)
	if err != nil {
		return artifact.Request{}, err
	}
	return artifact.Parse(esc + "/@v/" + ev + "." + kind.String())
}

// readInto reads a mutable answer's content into memory, replacing its
// Object with the bytes read (closed on error).
func readInto(res *Result) ([]byte, error) {
	data, err := io.ReadAll(res.Object)
	res.Object.Close()
	if err != nil {
		return nil, err
	}
	setContent(res, data)
	return data, nil
}

// readAll answers req without the policy and returns its content.
func (u *supply) readAll(ctx context.Context, req artifact.Request) ([]byte, error) {
	res, err := u.s.serve(ctx, req)
	if err != nil {
		return nil, err
	}
	defer res.Close()
	return io.ReadAll(res.Object)
}

// infoTime is the .info Time of module@version (zero: the .info has
// none), read through the cache and remembered. A missing .info is its
// not-found error (the version is answered as missing, as it would be
// without a policy, also in cache-only mode).
func (u *supply) infoTime(ctx context.Context, mod, version string) (time.Time, error) {
	k := mod + "@" + version
	if t, ok := u.times.get(k); ok {
		return t, nil
	}
	req, err := related(mod, version, artifact.Info)
	if err != nil {
		return time.Time{}, err
	}
	data, err := u.readAll(ctx, req)
	if err != nil {
		return time.Time{}, err
	}
	t := parseInfoTime(data)
	u.times.put(k, t)
	return t, nil
}

// parseInfoTime is the Time of an .info (or @latest) answer, zero when it
// has none.
func parseInfoTime(data []byte) time.Time {
	var info struct{ Time time.Time }
	if json.Unmarshal(data, &info) != nil {
		return time.Time{}
	}
	return info.Time
}

// retractions reads the retractions of the go.mod of the module's highest
// listed version (the go command's rule: the latest version it can see,
// retracted or not), from the namespace's list as the policy filters it:
// a version the cooldown hides cannot retract the versions that are
// served. A module without a list has none.
func (u *supply) retractions(ctx context.Context, mod string) ([]policy.Retraction, error) {
	list, err := u.listed(ctx, mod)
	if err != nil {
		return nil, err
	}
	if u.hides() {
		hide := u.hidden(ctx, mod, list)
		var shown []string
		for i, v := range list {
			if !hide[i] {
				shown = append(shown, v)
			}
		}
		list = shown
	}
	hi, err := policy.Highest(list, u.goModOf(ctx, mod))
	if err != nil {
		return nil, err
	}
	if hi == "" {
		return nil, nil
	}
	k := mod + "@" + hi
	if r, ok := u.retract.get(k); ok {
		return r, nil
	}
	mreq, err := related(mod, hi, artifact.Mod)
	if err != nil {
		return nil, err
	}
	data, err := u.readAll(ctx, mreq)
	if err != nil {
		return nil, err
	}
	rs, err := modrefs.Retractions(k+"/go.mod", data)
	if err != nil {
		u.log.Warn("latest go.mod does not parse; no retractions", "module", mod, "version", hi, "err", err)
	}
	r := make([]policy.Retraction, 0, len(rs))
	for _, x := range rs {
		r = append(r, policy.Retraction{Low: x.Low, High: x.High, Rationale: x.Rationale})
	}
	u.retract.put(k, r)
	return r, nil
}

// goModOf is policy.Highest's question for mod: whether a version has a
// go.mod of its own, i.e. its .mod (read through the cache) is not the
// one synthesized for a module without one ("module PATH\n"), as the go
// command decides.
func (u *supply) goModOf(ctx context.Context, mod string) func(version string) (bool, error) {
	return func(version string) (bool, error) {
		req, err := related(mod, version, artifact.Mod)
		if err != nil {
			return false, err
		}
		data, err := u.readAll(ctx, req)
		if err != nil {
			return false, err
		}
		return !bytes.Equal(data, []byte("module "+modfile.AutoQuote(mod)+"\n")), nil
	}
}

// hidden reports, for each version, whether lists and @latest leave it
// out. The times are read at most infoConcurrency at a time; a version
// whose time cannot be read is hidden (fail closed) and logged.
func (u *supply) hidden(ctx context.Context, mod string, versions []string) []bool {
	out := make([]bool, len(versions))
	advs, err := u.advisories(ctx, mod)
	if err != nil {
		u.log.Warn("vulnerability data unavailable for a list", "module", mod, "err", err)
	}
	p := *u.p
	p.Retracted = policy.Off // lists keep retracted versions: the go command reads retractions itself
	now := u.s.opts.Now()
	var seen seenRecord
	if p.NeedsTime() {
		if seen, err = u.firstSeen(ctx, mod, versions, true); err != nil {
			u.log.Warn("first-seen times unreadable; versions left out of the list", "module", mod, "err", err)
			for i := range out {
				out[i] = true
			}
			return out
		}
	}
	ctx = context.WithValue(ctx, timesOnlyKey{}, true)
	var g errgroup.Group
	g.SetLimit(infoConcurrency)
	for i, v := range versions {
		g.Go(func() error {
			f := policy.Facts{Module: mod, Version: v, Advisories: advs, Now: now}
			if p.NeedsTime() {
				t, err := u.infoTime(ctx, mod, v)
				if err != nil {
					if errclass.Of(err) != errclass.NotExist {
						u.log.Warn("version time unreadable; left out of the list", "module", mod, "version", v, "err", err)
					}
					out[i] = true
					return nil
				}
				f.Time, f.FirstSeen = t, seen[v]
			}
			d := p.Decide(f)
			out[i] = d.Hidden(&p)
			return nil
		})
	}
	_ = g.Wait()
	return out
}

// timesOnlyKey marks the .info reads of a list's versions (see
// sumPrefetchFor).
type timesOnlyKey struct{}

// sumPrefetchFor is sumPrefetch, except for the .info reads the policy
// makes to learn the times of a list's versions: those versions are not
// being downloaded, so their checksum database lookups would be wasted.
func (s *Service) sumPrefetchFor(ctx context.Context, req artifact.Request) {
	if ctx.Value(timesOnlyKey{}) == nil {
		s.sumPrefetch(req)
	}
}

// policyReadKey marks every read the policy makes for its own decisions
// (times, first sight, lists and the go.mod of retractions; see warmFor).
type policyReadKey struct{}

// warmFor is s.warm(req) unless ctx is one of the policy's own reads:
// reading a list's times or the latest go.mod for its retractions must
// not fill those versions' zips.
func (s *Service) warmFor(ctx context.Context, req artifact.Request) {
	if ctx.Value(timesOnlyKey{}) == nil && ctx.Value(policyReadKey{}) == nil {
		s.warm(req)
	}
}

// refuses reports whether the policy would refuse req (a zip, or a .mod
// under block_mod) now, for warming: warming fetches nothing a client
// would be refused. Facts that cannot be read count as a refusal (a
// later request decides, and reports, on its own). No decision, event or
// audit record is made; reading the facts may record the version's first
// sight, as any request for it would.
func (u *supply) refuses(ctx context.Context, req artifact.Request) bool {
	a := policy.Zip
	switch {
	case req.Kind == artifact.Zip:
	case req.Kind == artifact.Mod && u.p.BlockMod:
		a = policy.Mod
	default:
		return false
	}
	f, err := u.facts(ctx, req.Module, req.Version, true)
	if err != nil {
		return true
	}
	d := u.p.Decide(f)
	return d.Refuses(u.p, a, req.Module, req.Version) != nil
}

// hides reports whether the policy may leave versions out of lists.
func (u *supply) hides() bool { return u.p.MinAge > 0 || u.p.HideVulnerable }

// list answers a list without the versions the policy hides.
func (u *supply) list(ctx context.Context, req artifact.Request) (*Result, error) {
	res, data, err := u.serveMutable(ctx, req)
	if err != nil || data == nil {
		return res, err
	}
	versions := strings.Fields(string(data))
	hide := u.hidden(ctx, req.Module, versions)
	var b bytes.Buffer
	for i, v := range versions {
		if !hide[i] {
			b.WriteString(v + "\n")
		}
	}
	setContent(res, b.Bytes())
	return res, nil
}

// serveMutable answers a list, latest or query without the policy and,
// when the policy may change the answer, reads its content (nil when it
// cannot).
func (u *supply) serveMutable(ctx context.Context, req artifact.Request) (*Result, []byte, error) {
	res, err := u.s.serve(ctx, req)
	if err != nil || !u.hides() {
		return res, nil, err
	}
	data, err := readInto(res)
	if err != nil {
		return nil, nil, err
	}
	return res, data, nil
}

// setContent makes data the content of res.
func setContent(res *Result, data []byte) {
	info := res.Object.Info()
	info.Size = int64(len(data))
	res.Object = &memObject{Reader: bytes.NewReader(data), info: info}
}

// latest answers @latest (or a query) with a version the policy does not
// hide: the upstream's answer when it passes, else (for @latest) the
// newest listed version that passes; when none does, the refusal of the
// upstream's answer.
func (u *supply) latest(ctx context.Context, req artifact.Request) (*Result, error) {
	res, data, err := u.serveMutable(ctx, req)
	if err != nil || data == nil {
		return res, err
	}
	var v struct {
		Version string
		Time    time.Time
	}
	if json.Unmarshal(data, &v) != nil || !semver.IsValid(v.Version) {
		return res, nil // not ours to judge: the go command will reject it
	}
	f, err := u.facts(ctx, req.Module, v.Version, false)
	if err != nil {
		return nil, err
	}
	if f.Time.IsZero() {
		f.Time = v.Time // the answer's own time, when the .info cannot say
	}
	p := *u.p
	p.Retracted = policy.Off
	d := p.Decide(f)
	if !d.Hidden(&p) {
		return res, nil
	}
	refusal := &policy.BlockedError{Module: req.Module, Version: v.Version, Finding: *d.Blocked(), MinAge: p.MinAge, Latest: req.Kind == artifact.Latest}
	if req.Kind == artifact.Query {
		return nil, refusal
	}
	lreq, err := related(req.Module, "", artifact.List)
	if err != nil {
		res.Close()
		return nil, err
	}
	lres, err := u.list(ctx, lreq)
	if errclass.Of(err) == errclass.NotExist {
		return nil, refusal
	}
	if err != nil {
		return nil, err
	}
	list, err := readInto(lres)
	if err != nil {
		return nil, err
	}
	pick, err := policy.Highest(strings.Fields(string(list)), u.goModOf(ctx, req.Module))
	if err != nil {
		return nil, err
	}
	if pick == "" {
		return nil, refusal
	}
	ireq, err := related(req.Module, pick, artifact.Info)
	if err != nil {
		return nil, err
	}
	idata, err := u.readAll(ctx, ireq)
	if errors.Is(err, iofs.ErrNotExist) {
		return nil, refusal
	}
	if err != nil {
		return nil, err
	}
	setContent(res, idata)
	return res, nil
}
