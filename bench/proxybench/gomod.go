package main

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	iofs "io/fs"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"
)

// The gomod phase measures what a user feels: the real go command running
// "go mod download" of a project with a fresh module cache, against the
// real upstream (the first entry of go env GOPROXY) and the default
// checksum database, in five configurations:
//
//   - direct: GOPROXY = that upstream, the go command's defaults otherwise;
//   - cold: through a fresh modproxy on an empty cache directory, started
//     with its own defaults (go env GOPROXY and GOSUMDB);
//   - warm: the same process right after the cold run;
//   - file: GOPROXY = file:// over the cold run's cache/download, the limit
//     for a warm proxy;
//   - fleet: N clients at once, straight from the upstream and through one
//     cold modproxy.
//
// Each run has a GOPATH of its own (so also GOMODCACHE and the go command's
// checksum-database state in GOPATH/pkg/sumdb) and a copy of the project.

// gomodOptions configures the gomod phase.
type gomodOptions struct {
	Projects    []string      `json:"projects"` // as given on the command line
	Rounds      int           `json:"rounds"`
	Fleet       int           `json:"fleet"`
	FleetRounds int           `json:"fleet_rounds"`
	Timeout     time.Duration `json:"timeout_ns"`
	dirs        []string      // Projects, absolute
}

// Configuration names, as they appear in results.json.
const (
	cfgDirect = "direct"
	cfgCold   = "cold"
	cfgWarm   = "warm"
	cfgFile   = "file"
)

// gomodProject is everything measured for one project.
type gomodProject struct {
	Project string       `json:"project"` // as given on the command line
	Rounds  []gomodRound `json:"rounds"`
	Fleet   []fleetRound `json:"fleet,omitempty"`
}

// gomodRound is one interleaved round: the four configurations and what
// the modproxy process of the cold and warm runs did.
type gomodRound struct {
	Order  []string            `json:"order"`
	Runs   map[string]gomodRun `json:"runs"` // by configuration
	Proxy  proxyStats          `json:"modproxy"`
	Errors []string            `json:"errors,omitempty"`
}

// proxyStats is what one modproxy process did during a cold fill (and the
// warm run after it, when there is one).
type proxyStats struct {
	ColdUpstream upstreamMetrics `json:"cold_upstream"`
	WarmUpstream upstreamMetrics `json:"warm_upstream"`
	ColdLog      accessLog       `json:"cold_log"`
	WarmLog      accessLog       `json:"warm_log"`
	ColdCPU      time.Duration   `json:"cold_cpu_ns"` // user+system CPU of modproxy during the cold fill
	PeakRSSKiB   int64           `json:"peak_rss_kib"`
}

// fleetRound is N concurrent clients straight from the upstream and
// through one cold modproxy.
type fleetRound struct {
	Clients int        `json:"clients"`
	Order   []string   `json:"order"`
	Direct  []gomodRun `json:"direct"`
	Cold    []gomodRun `json:"cold"`
	Proxy   proxyStats `json:"modproxy"`
}

// gomodRun is one "go mod download".
type gomodRun struct {
	Wall     time.Duration `json:"wall_ns"`
	UserCPU  time.Duration `json:"user_cpu_ns"` // of the go command
	SysCPU   time.Duration `json:"sys_cpu_ns"`
	LoadAvg  string        `json:"loadavg_at_start"`
	Err      string        `json:"error,omitempty"`
	Download downloadStats `json:"download"`
}

// downloadStats describes the module cache a run left behind.
type downloadStats struct {
	Files       int    `json:"files"` // .info, .mod and .zip files in cache/download
	Bytes       int64  `json:"bytes"`
	Fingerprint string `json:"fingerprint"` // of their paths and sizes
	SumDBFiles  int    `json:"sumdb_files"` // the go command's own checksum-database lookups and tiles
}

// upstreamMetrics are modproxy's upstream counters from /metrics.
type upstreamMetrics struct {
	Fetches  map[string]int64 `json:"fetches"` // modproxy_upstream_fetch_seconds_count by result
	Retries  int64            `json:"retries"`
	Requests int64            `json:"requests"` // fetches + retries: HTTP requests to the upstream
}

func (u upstreamMetrics) sub(v upstreamMetrics) upstreamMetrics {
	d := upstreamMetrics{Fetches: map[string]int64{}, Retries: u.Retries - v.Retries, Requests: u.Requests - v.Requests}
	for k, n := range u.Fetches {
		if n -= v.Fetches[k]; n != 0 {
			d.Fetches[k] = n
		}
	}
	return d
}

// gomodEnv is the go command's configuration for the phase, read once.
type gomodEnv struct {
	upstream string // the first entry of go env GOPROXY
	sumdb    string // go env GOSUMDB
	goflags  string // go env GOFLAGS plus -modcacherw
}

func readGomodEnv(ctx context.Context) (gomodEnv, error) {
	var e gomodEnv
	proxies, err := goEnv(ctx, "GOPROXY")
	if err != nil {
		return e, err
	}
	first, _, _ := strings.Cut(proxies, ",")
	first, _, _ = strings.Cut(first, "|")
	if u, err := url.Parse(first); err != nil || (u.Scheme != "https" && u.Scheme != "http") || u.Host == "" {
		return e, fmt.Errorf("the first entry of go env GOPROXY is %q, not a proxy URL: the gomod phase measures against a real upstream proxy", first)
	}
	e.upstream = first
	if e.sumdb, err = goEnv(ctx, "GOSUMDB"); err != nil {
		return e, err
	}
	goflags, err := goEnv(ctx, "GOFLAGS")
	if err != nil {
		return e, err
	}
	e.goflags = strings.TrimSpace(goflags + " -modcacherw")
	return e, nil
}

// environ is the go command's environment for one run: a GOPATH and module
// cache of its own, GOPROXY, the default GOSUMDB, no workspace, the local
// toolchain only (a toolchain switch would download one).
func (e gomodEnv) environ(gopath, goproxy string) []string {
	return append(os.Environ(),
		"GOPATH="+gopath,
		"GOMODCACHE="+filepath.Join(gopath, "pkg", "mod"),
		"GOPROXY="+goproxy,
		"GOSUMDB="+e.sumdb,
		"GOFLAGS="+e.goflags,
		"GOWORK=off",
		"GOTOOLCHAIN=local",
	)
}

// gomodBench is one gomod phase.
type gomodBench struct {
	b   *bench
	env gomodEnv
	seq int
}

// gomod runs the phase for every project.
func (b *bench) gomod(ctx context.Context) error {
	env, err := readGomodEnv(ctx)
	if err != nil {
		return err
	}
	g := &gomodBench{b: b, env: env}
	o := b.opts.GoMod
	for i, dir := range o.dirs {
		if _, err := os.Stat(filepath.Join(dir, "go.mod")); err != nil {
			return fmt.Errorf("project %s: %w", o.Projects[i], err)
		}
	}
	for i, dir := range o.dirs {
		pr := gomodProject{Project: o.Projects[i]}
		for r := range o.Rounds {
			if err := ctx.Err(); err != nil {
				return err
			}
			rr := g.round(ctx, dir, r)
			logf("gomod %s round %d: %s", pr.Project, r+1, rr.summary())
			pr.Rounds = append(pr.Rounds, rr)
		}
		if o.Fleet > 0 {
			for r := range o.FleetRounds {
				if err := ctx.Err(); err != nil {
					return err
				}
				fr := g.fleet(ctx, dir, r)
				logf("gomod %s fleet %d: direct slowest %v, cold slowest %v", pr.Project, r+1,
					slowest(fr.Direct).Round(time.Millisecond), slowest(fr.Cold).Round(time.Millisecond))
				pr.Fleet = append(pr.Fleet, fr)
			}
		}
		b.res.GoMod = append(b.res.GoMod, pr)
		g.check(pr)
	}
	return ctx.Err()
}

// workDir makes a fresh directory for one run.
func (g *gomodBench) workDir(name string) (string, error) {
	g.seq++
	dir := filepath.Join(g.b.tmp, "gomod", fmt.Sprintf("%03d-%s", g.seq, name))
	return dir, os.MkdirAll(dir, 0o755)
}

// client is one prepared "go mod download": a copy of the project and an
// empty GOPATH in dir.
type client struct {
	dir    string
	src    string
	gopath string
}

func (g *gomodBench) prepare(project, name string) (client, error) {
	dir, err := g.workDir(name)
	if err != nil {
		return client{}, err
	}
	c := client{dir: dir, src: filepath.Join(dir, "src"), gopath: filepath.Join(dir, "gopath")}
	if err := os.Mkdir(c.src, 0o755); err != nil {
		return c, err
	}
	return c, copyTree(project, c.src, 0o644, 0o755)
}

// download runs "go mod download" in c against goproxy and describes the
// module cache it left.
func (g *gomodBench) download(ctx context.Context, c client, goproxy string) gomodRun {
	ctx, cancel := context.WithTimeout(ctx, g.b.opts.GoMod.Timeout)
	defer cancel()
	r := gomodRun{LoadAvg: loadAvg()}
	var stderr bytes.Buffer
	cmd := exec.CommandContext(ctx, "go", "mod", "download")
	cmd.Dir = c.src
	cmd.Env = g.env.environ(c.gopath, goproxy)
	cmd.Stderr = &stderr
	cmd.WaitDelay = 10 * time.Second
	start := time.Now()
	err := cmd.Run()
	r.Wall = time.Since(start)
	if ps := cmd.ProcessState; ps != nil {
		r.UserCPU, r.SysCPU = ps.UserTime(), ps.SystemTime()
	}
	if err != nil {
		r.Err = fmt.Sprintf("go mod download: %v: %s", err, tailString(stderr.String(), 1000))
		return r
	}
	ds, err := describeDownload(filepath.Join(c.gopath, "pkg", "mod", "cache", "download"))
	if err != nil {
		r.Err = err.Error()
	}
	r.Download = ds
	return r
}

// remove deletes a client's directory (the module cache is writable:
// -modcacherw).
func (c client) remove() {
	if err := os.RemoveAll(c.dir); err != nil {
		logf("removing %s: %v", c.dir, err)
	}
}

// describeDownload counts the .info, .mod and .zip files under a module
// cache's cache/download and fingerprints their paths and sizes; files
// under sumdb/ are counted apart.
func describeDownload(root string) (downloadStats, error) {
	var ds downloadStats
	var lines []string
	err := filepath.WalkDir(root, func(p string, d iofs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel, err := filepath.Rel(root, p)
		if err != nil {
			return err
		}
		rel = filepath.ToSlash(rel)
		if d.IsDir() || !d.Type().IsRegular() {
			return nil
		}
		if strings.HasPrefix(rel, "sumdb/") {
			ds.SumDBFiles++
			return nil
		}
		switch filepath.Ext(rel) {
		case ".info", ".mod", ".zip":
		default:
			return nil
		}
		fi, err := d.Info()
		if err != nil {
			return err
		}
		ds.Files++
		ds.Bytes += fi.Size()
		lines = append(lines, rel+" "+strconv.FormatInt(fi.Size(), 10))
		return nil
	})
	slices.Sort(lines)
	h := sha256.Sum256([]byte(strings.Join(lines, "\n")))
	ds.Fingerprint = hex.EncodeToString(h[:6])
	return ds, err
}

// round measures the four configurations once. Rounds 1, 3, ... start
// with direct, rounds 2, 4, ... end with it, so that drift of the machine or of the
// upstream's caches does not always favour the same side.
func (g *gomodBench) round(ctx context.Context, project string, r int) gomodRound {
	rr := gomodRound{Runs: map[string]gomodRun{}}
	fail := func(err error) { rr.Errors = append(rr.Errors, err.Error()) }
	direct := func() {
		c, err := g.prepare(project, "direct")
		if err != nil {
			fail(err)
			return
		}
		defer c.remove()
		rr.Order = append(rr.Order, cfgDirect)
		rr.Runs[cfgDirect] = g.download(ctx, c, g.env.upstream)
	}
	if r%2 == 0 {
		direct()
	}
	if err := g.proxied(ctx, project, &rr); err != nil {
		fail(err)
	}
	if r%2 == 1 {
		direct()
	}
	return rr
}

// proxied runs cold and warm through one fresh modproxy, then file:// over
// the cold run's downloads.
func (g *gomodBench) proxied(ctx context.Context, project string, rr *gomodRound) error {
	cacheDir, err := g.workDir("modproxy-cache")
	if err != nil {
		return err
	}
	defer os.RemoveAll(cacheDir)
	p, err := g.b.mp.startDefaults(cacheDir)
	if err != nil {
		return err
	}
	defer p.Stop()
	hc := newClient(1, 30*time.Second)
	defer hc.CloseIdleConnections()

	cold, err := g.prepare(project, "cold")
	if err != nil {
		return err
	}
	defer cold.remove()
	before, err := scrapeUpstream(ctx, hc, p.URL())
	if err != nil {
		return err
	}
	cpu0, _ := procCPU(p.Pid())
	rr.Order = append(rr.Order, cfgCold)
	rr.Runs[cfgCold] = g.download(ctx, cold, p.URL())
	afterCold, err := scrapeUpstream(ctx, hc, p.URL())
	if err != nil {
		return err
	}
	cpu1, _ := procCPU(p.Pid())
	rr.Proxy.ColdUpstream = afterCold.sub(before)
	rr.Proxy.ColdCPU = cpu1 - cpu0
	if _, hwm, err := memStatus(p.Pid()); err == nil {
		rr.Proxy.PeakRSSKiB = hwm
	}

	warm, err := g.prepare(project, "warm")
	if err != nil {
		return err
	}
	rr.Order = append(rr.Order, cfgWarm)
	rr.Runs[cfgWarm] = g.download(ctx, warm, p.URL())
	warm.remove()
	afterWarm, err := scrapeUpstream(ctx, hc, p.URL())
	if err != nil {
		return err
	}
	rr.Proxy.WarmUpstream = afterWarm.sub(afterCold)
	hc.CloseIdleConnections()
	p.Stop()
	rounds, err := readAccessLog(p.Log)
	if err != nil {
		return err
	}
	rr.Proxy.ColdLog, rr.Proxy.WarmLog = round(rounds, 0), round(rounds, 1)

	if rr.Runs[cfgCold].Err != "" {
		return errors.New("no file:// run: the cold run failed")
	}
	fileProxy, err := fileGOPROXY(filepath.Join(cold.gopath, "pkg", "mod", "cache", "download"))
	if err != nil {
		return err
	}
	file, err := g.prepare(project, "file")
	if err != nil {
		return err
	}
	defer file.remove()
	rr.Order = append(rr.Order, cfgFile)
	rr.Runs[cfgFile] = g.download(ctx, file, fileProxy)
	return nil
}

// fileGOPROXY makes a module cache's cache/download directory a complete
// file:// GOPROXY and returns its URL. When the go command consulted a
// checksum database during the run that filled it (lookups and tiles under
// sumdb/NAME/), a sumdb/NAME/supported file makes the go command read them
// from there too, instead of going to the network.
func fileGOPROXY(dl string) (string, error) {
	ents, err := os.ReadDir(filepath.Join(dl, "sumdb"))
	if err != nil && !errors.Is(err, iofs.ErrNotExist) {
		return "", err
	}
	for _, e := range ents {
		if e.IsDir() {
			if err := os.WriteFile(filepath.Join(dl, "sumdb", e.Name(), "supported"), nil, 0o644); err != nil {
				return "", err
			}
		}
	}
	return (&url.URL{Scheme: "file", Path: filepath.ToSlash(dl)}).String(), nil
}

// fleet starts N clients at once straight from the upstream and through
// one cold modproxy (in alternating order from round to round).
func (g *gomodBench) fleet(ctx context.Context, project string, r int) fleetRound {
	n := g.b.opts.GoMod.Fleet
	fr := fleetRound{Clients: n}
	direct := func() {
		fr.Order = append(fr.Order, cfgDirect)
		fr.Direct = g.concurrently(ctx, project, "fleet-direct", n, g.env.upstream)
	}
	cold := func() {
		fr.Order = append(fr.Order, cfgCold)
		runs, ps, err := g.fleetCold(ctx, project, n)
		if err != nil {
			runs = append(runs, gomodRun{Err: err.Error()})
		}
		fr.Cold, fr.Proxy = runs, ps
	}
	if r%2 == 0 {
		direct()
		cold()
	} else {
		cold()
		direct()
	}
	return fr
}

func (g *gomodBench) fleetCold(ctx context.Context, project string, n int) ([]gomodRun, proxyStats, error) {
	var ps proxyStats
	cacheDir, err := g.workDir("modproxy-cache")
	if err != nil {
		return nil, ps, err
	}
	defer os.RemoveAll(cacheDir)
	p, err := g.b.mp.startDefaults(cacheDir)
	if err != nil {
		return nil, ps, err
	}
	defer p.Stop()
	hc := newClient(1, 30*time.Second)
	defer hc.CloseIdleConnections()
	before, err := scrapeUpstream(ctx, hc, p.URL())
	if err != nil {
		return nil, ps, err
	}
	cpu0, _ := procCPU(p.Pid())
	runs := g.concurrently(ctx, project, "fleet-cold", n, p.URL())
	after, err := scrapeUpstream(ctx, hc, p.URL())
	if err != nil {
		return runs, ps, err
	}
	cpu1, _ := procCPU(p.Pid())
	ps.ColdUpstream, ps.ColdCPU = after.sub(before), cpu1-cpu0
	if _, hwm, err := memStatus(p.Pid()); err == nil {
		ps.PeakRSSKiB = hwm
	}
	hc.CloseIdleConnections()
	p.Stop()
	rounds, err := readAccessLog(p.Log)
	if err != nil {
		return runs, ps, err
	}
	ps.ColdLog = sumRounds(rounds)
	return runs, ps, nil
}

// concurrently runs n clients that start together and returns their runs.
func (g *gomodBench) concurrently(ctx context.Context, project, name string, n int, goproxy string) []gomodRun {
	runs := make([]gomodRun, n)
	clients := make([]client, n)
	for i := range n {
		c, err := g.prepare(project, fmt.Sprintf("%s-%d", name, i+1))
		if err != nil {
			runs[i].Err = err.Error()
		}
		clients[i] = c
	}
	gate := make(chan struct{})
	var wg sync.WaitGroup
	for i, c := range clients {
		if runs[i].Err != "" {
			continue
		}
		wg.Go(func() {
			<-gate
			runs[i] = g.download(ctx, c, goproxy)
		})
	}
	close(gate)
	wg.Wait()
	for _, c := range clients {
		c.remove()
	}
	return runs
}

// scrapeUpstream reads modproxy's upstream counters from its /metrics.
func scrapeUpstream(ctx context.Context, c *http.Client, base string) (upstreamMetrics, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, base+"/metrics", nil)
	if err != nil {
		return upstreamMetrics{}, err
	}
	resp, err := c.Do(req)
	if err != nil {
		return upstreamMetrics{}, fmt.Errorf("modproxy metrics: %w", err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(io.LimitReader(resp.Body, 16<<20))
	if err != nil {
		return upstreamMetrics{}, fmt.Errorf("modproxy metrics: %w", err)
	}
	if resp.StatusCode != http.StatusOK {
		return upstreamMetrics{}, fmt.Errorf("modproxy metrics: status %d", resp.StatusCode)
	}
	return parseUpstreamMetrics(body), nil
}

// parseUpstreamMetrics sums modproxy_upstream_fetch_seconds_count by its
// result label, and modproxy_upstream_retries_total, over every upstream,
// from the Prometheus text format.
func parseUpstreamMetrics(text []byte) upstreamMetrics {
	m := upstreamMetrics{Fetches: map[string]int64{}}
	for line := range strings.SplitSeq(string(text), "\n") {
		if line == "" || line[0] == '#' {
			continue
		}
		i := strings.LastIndexByte(line, ' ')
		if i < 0 {
			continue
		}
		v, err := strconv.ParseFloat(line[i+1:], 64)
		if err != nil {
			continue
		}
		name, labels, _ := strings.Cut(line[:i], "{")
		switch name {
		case "modproxy_upstream_fetch_seconds_count":
			result := "unknown"
			if _, rest, ok := strings.Cut(labels, `result="`); ok {
				result, _, _ = strings.Cut(rest, `"`)
			}
			m.Fetches[result] += int64(v)
			m.Requests += int64(v)
		case "modproxy_upstream_retries_total":
			m.Retries += int64(v)
			m.Requests += int64(v)
		}
	}
	return m
}

// procCPU returns the user+system CPU time of a process from
// /proc/PID/stat (in clock ticks of 1/100 s, USER_HZ on Linux).
func procCPU(pid int) (time.Duration, error) {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return 0, err
	}
	i := bytes.LastIndexByte(b, ')')
	if i < 0 {
		return 0, errors.New("malformed /proc stat")
	}
	f := strings.Fields(string(b[i+1:]))
	if len(f) < 13 {
		return 0, errors.New("malformed /proc stat")
	}
	// After the command: state (field 3), ..., utime (14), stime (15).
	ut, err1 := strconv.ParseInt(f[11], 10, 64)
	st, err2 := strconv.ParseInt(f[12], 10, 64)
	if err := errors.Join(err1, err2); err != nil {
		return 0, err
	}
	return time.Duration(ut+st) * 10 * time.Millisecond, nil
}

func tailString(s string, n int) string {
	if len(s) > n {
		s = s[len(s)-n:]
	}
	return strings.TrimSpace(s)
}

func slowest(runs []gomodRun) time.Duration {
	var d time.Duration
	for _, r := range runs {
		d = max(d, r.Wall)
	}
	return d
}

// summary is one progress line.
func (rr gomodRound) summary() string {
	var s []string
	for _, c := range rr.Order {
		r := rr.Runs[c]
		x := fmt.Sprintf("%s %v", c, r.Wall.Round(time.Millisecond))
		if r.Err != "" {
			x += " (failed)"
		}
		s = append(s, x)
	}
	s = append(s, fmt.Sprintf("cold fill: %d upstream requests", rr.Proxy.ColdUpstream.Requests))
	for _, e := range rr.Errors {
		s = append(s, "error: "+e)
	}
	return strings.Join(s, ", ")
}

// check records the phase's checks for one project: every download
// succeeded, every configuration left the same files as the first direct
// run, and the warm runs were all hits with no upstream request.
func (g *gomodBench) check(pr gomodProject) {
	var ref downloadStats
	var runs, failed, differ int
	var firstErr []string
	see := func(r gomodRun) {
		runs++
		switch {
		case r.Err != "":
			failed++
			if len(firstErr) < 3 {
				firstErr = append(firstErr, r.Err)
			}
		case ref.Fingerprint == "":
			ref = r.Download
		case r.Download.Fingerprint != ref.Fingerprint:
			differ++
		}
	}
	warmMiss, warmUp := 0, int64(0)
	for _, rr := range pr.Rounds {
		if r, ok := rr.Runs[cfgDirect]; ok {
			see(r)
		}
		for _, c := range []string{cfgCold, cfgWarm, cfgFile} {
			if r, ok := rr.Runs[c]; ok {
				see(r)
			}
		}
		for _, e := range rr.Errors {
			failed++
			if len(firstErr) < 3 {
				firstErr = append(firstErr, e)
			}
		}
		warmMiss += rr.Proxy.WarmLog.Cache["miss"] + rr.Proxy.WarmLog.Cache["coalesced"]
		warmUp += rr.Proxy.WarmUpstream.Requests
	}
	for _, fr := range pr.Fleet {
		for _, r := range append(slices.Clone(fr.Direct), fr.Cold...) {
			see(r)
		}
	}
	res := &g.b.res
	res.check(pr.Project+": every go mod download succeeded", failed == 0 && runs > 0,
		fmt.Sprintf("%d runs, %d failed %s", runs, failed, strings.Join(firstErr, "; ")))
	res.check(pr.Project+": every configuration downloaded the same files", differ == 0 && ref.Files > 0,
		fmt.Sprintf("%d .info/.mod/.zip files (%.1f MB, fingerprint %s); %d runs differ", ref.Files, float64(ref.Bytes)/1e6, ref.Fingerprint, differ))
	res.check(pr.Project+": warm runs: every request a hit, no upstream request", warmMiss == 0 && warmUp == 0,
		fmt.Sprintf("%d misses in the access logs, %d upstream requests", warmMiss, warmUp))
}
