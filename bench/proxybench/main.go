// Command proxybench measures modproxy end to end on this machine, beside
// references measured in the same run, and writes a Markdown and a JSON
// report.
//
// Run it from the root of the modproxy module:
//
//	go run ./bench/proxybench [-project ../shared/bench/project] [-out bench/results]
//
// It derives the artifact list from the project's go.sum, makes a local
// upstream (a "go mod download" of the project into bench/.cache, served
// over loopback by a counting file server), builds modproxy and measures:
// fetching every artifact straight from the upstream, cold and warm through
// modproxy, 50 concurrent requests for one cold zip, the latency of a cached
// hit while 40 slow misses are in flight, wrk load on cached hits through
// modproxy, net/http.FileServer and nginx, and modproxy's peak RSS while
// serving 50 concurrent zip downloads. The gomod phase (-phases gomod, not
// in the default set: it needs the network) times the real go command's
// "go mod download" with a fresh module cache against the real upstream,
// straight, through a cold and a warm modproxy, from a file:// GOPROXY, and
// as a fleet of concurrent clients. See bench/README.md.
//
// Everything listens on 127.0.0.1; every loop is bounded; the servers it
// starts are stopped before it exits.
package main

import (
	"archive/tar"
	"cmp"
	"context"
	"flag"
	"fmt"
	"io"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"runtime"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"
)

type options struct {
	Project         string        `json:"project"`
	Out             string        `json:"-"`
	Cache           string        `json:"-"`
	Reps            int           `json:"reps"`
	Parallel        int           `json:"parallel"`
	UpstreamLatency time.Duration `json:"upstream_latency_ns"`
	Coalesce        int           `json:"coalesce_requests"`
	Misses          int           `json:"misses"`
	MissLatency     time.Duration `json:"miss_latency_ns"`
	Hits            int           `json:"hits"`
	LoadTool        string        `json:"load_tool_flag"`
	Load            loadShape     `json:"load"`
	LoadReps        int           `json:"load_reps"`
	RSSConns        int           `json:"rss_conns"`
	RSSDuration     time.Duration `json:"rss_duration_ns"`
	Nginx           bool          `json:"nginx"`
	Install         bool          `json:"install"`
	Keep            bool          `json:"-"`
	Phases          string        `json:"phases"`
	Rev             string        `json:"rev"`
	Variants        []variant     `json:"variants"`
	GoMod           gomodOptions  `json:"gomod"`
	ModproxyEnv     []string      `json:"modproxy_env"` // KEY=VALUE for every modproxy process
}

func main() {
	// Hidden mode: the reference file server, re-executed by the harness.
	if len(os.Args) > 2 && os.Args[1] == "-serve-files" {
		fs := flag.NewFlagSet("serve-files", flag.ExitOnError)
		dir := fs.String("serve-files", "", "")
		listen := fs.String("listen", "127.0.0.1:0", "")
		_ = fs.Parse(os.Args[1:])
		if err := serveFiles(*dir, *listen); err != nil {
			fmt.Fprintln(os.Stderr, err)
			os.Exit(1)
		}
		return
	}
	os.Exit(run())
}

func run() int {
	var o options
	flag.StringVar(&o.Project, "project", "../shared/bench/project", "Go project whose go.sum lists the artifacts")
	flag.StringVar(&o.Out, "out", "bench/results", "directory for results.md and results.json")
	flag.StringVar(&o.Cache, "cache", "bench/.cache", "directory for the upstream's module cache (reused across runs)")
	flag.IntVar(&o.Reps, "reps", 3, "repetitions of the direct, cold and warm fetches (the median is reported)")
	flag.IntVar(&o.Parallel, "parallel", 16, "requests in flight when fetching all artifacts")
	flag.DurationVar(&o.UpstreamLatency, "upstream-latency", 0, "latency the local upstream adds to every request")
	flag.IntVar(&o.Coalesce, "coalesce", 50, "concurrent requests for one cold zip")
	flag.IntVar(&o.Misses, "misses", 40, "cold misses in flight while hits are timed")
	flag.DurationVar(&o.MissLatency, "miss-latency", 2*time.Second, "upstream latency of those misses")
	flag.IntVar(&o.Hits, "hits", 200, "sequential cached hits timed while the misses are in flight")
	flag.StringVar(&o.LoadTool, "load-tool", "auto", "load generator: auto (wrk, else Go), wrk or go")
	flag.IntVar(&o.Load.Threads, "load-threads", 2, "load generator threads (wrk -t)")
	flag.IntVar(&o.Load.Conns, "load-conns", 50, "load generator connections (wrk -c)")
	flag.DurationVar(&o.Load.Duration, "load-duration", 10*time.Second, "duration of each load run (wrk -d), whole seconds")
	flag.IntVar(&o.LoadReps, "load-reps", 3, "runs of each load measurement, interleaved (the median is reported)")
	flag.IntVar(&o.RSSConns, "rss-conns", 50, "concurrent zip downloads while peak RSS is measured")
	flag.DurationVar(&o.RSSDuration, "rss-duration", 5*time.Second, "how long those downloads repeat")
	flag.BoolVar(&o.Nginx, "nginx", true, "measure nginx beside modproxy and FileServer")
	flag.BoolVar(&o.Install, "install", true, "install missing wrk and nginx with apt-get (as root only)")
	flag.BoolVar(&o.Keep, "keep", false, "keep the temporary directory (logs, caches, nginx config)")
	flag.StringVar(&o.Rev, "rev", "", "build modproxy from this git revision (e.g. HEAD) instead of the working tree")
	flag.StringVar(&o.Phases, "phases", "direct,fill,coalesce,hits,load,memory", "phases to run, comma-separated (load and memory need fill; gomod needs the network), or all: these and gomod")
	flag.Func("gomod-project", "`DIR`: a project for the gomod phase (repeatable; default: -project)", func(s string) error {
		o.GoMod.Projects = append(o.GoMod.Projects, s)
		return nil
	})
	flag.Func("modproxy-env", "`KEY=VALUE`: an environment variable for every modproxy process, e.g. MODPROXY_WARM_ZIPS=true (repeatable)", func(s string) error {
		if !strings.HasPrefix(s, "MODPROXY_") || !strings.Contains(s, "=") {
			return fmt.Errorf("%q is not MODPROXY_KEY=VALUE", s)
		}
		o.ModproxyEnv = append(o.ModproxyEnv, s)
		return nil
	})
	flag.IntVar(&o.GoMod.Rounds, "gomod-rounds", 3, "gomod phase: interleaved rounds of direct, cold, warm and file:// per project (the median is reported)")
	flag.IntVar(&o.GoMod.Fleet, "gomod-fleet", 8, "gomod phase: concurrent go mod download clients of the fleet measurement (0: none)")
	flag.IntVar(&o.GoMod.FleetRounds, "gomod-fleet-rounds", 1, "gomod phase: rounds of the fleet measurement, direct and through a cold modproxy")
	flag.DurationVar(&o.GoMod.Timeout, "gomod-timeout", 10*time.Minute, "gomod phase: limit for one go mod download")
	flag.Func("variant", "`NAME=FLAGS`: a modproxy configuration for the fill phases: extra serve flags, after the base ones;\n"+
		"{sumdb} stands for the harness's checksum database (NAME+KEY). Repeatable; the first also serves the other phases.\n"+
		"Default: \"verification on=--sumdb {sumdb}\" and \"verification off=\"", func(s string) error {
		name, args, ok := strings.Cut(s, "=")
		if !ok || name == "" {
			return fmt.Errorf("want NAME=FLAGS, have %q", s)
		}
		o.Variants = append(o.Variants, variant{Name: name, Args: strings.Fields(args)})
		return nil
	})
	flag.Parse()
	if flag.NArg() > 0 {
		fmt.Fprintf(os.Stderr, "proxybench: unexpected arguments %q\n", flag.Args())
		return 2
	}
	if len(o.Variants) == 0 {
		o.Variants = []variant{
			{Name: "verification on", Args: []string{"--sumdb", "{sumdb}"}},
			{Name: "verification off"},
		}
	}
	if len(o.GoMod.Projects) == 0 {
		o.GoMod.Projects = []string{o.Project}
	}
	if o.GoMod.Rounds < 1 || o.GoMod.Fleet < 0 || o.GoMod.FleetRounds < 0 || o.GoMod.Timeout <= 0 || o.Reps < 1 || o.Parallel < 1 || o.Coalesce < 1 || o.Misses < 0 || o.Hits < 1 || o.Load.Conns < 1 || o.Load.Threads < 1 || o.LoadReps < 1 ||
		o.Load.Duration < time.Second || o.RSSConns < 1 || o.RSSDuration <= 0 || o.RSSDuration > 5*time.Minute || o.Load.Duration > 10*time.Minute {
		fmt.Fprintln(os.Stderr, "proxybench: a count or duration is out of range")
		return 2
	}

	o.GoMod.dirs = make([]string, len(o.GoMod.Projects))
	for i, p := range o.GoMod.Projects {
		abs, err := filepath.Abs(p)
		if err != nil {
			fmt.Fprintf(os.Stderr, "proxybench: %v\n", err)
			return 2
		}
		o.GoMod.dirs[i] = abs
	}
	for _, p := range []*string{&o.Project, &o.Out, &o.Cache} {
		abs, err := filepath.Abs(*p)
		if err != nil {
			fmt.Fprintf(os.Stderr, "proxybench: %v\n", err)
			return 2
		}
		*p = abs
	}

	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	b := &bench{opts: o}
	err := b.run(ctx)
	b.cleanup()
	b.res.Machine.LoadAvgEnd = loadAvg()
	if err != nil {
		logf("error: %v", err)
		b.res.Checks = append(b.res.Checks, check{Name: "run completed", Detail: err.Error()})
	}
	md := b.res.markdown()
	fmt.Print(md)
	if werr := b.res.write(o.Out, md); werr != nil {
		logf("writing results: %v", werr)
		return 1
	}
	logf("wrote %s and %s", filepath.Join(o.Out, "results.md"), filepath.Join(o.Out, "results.json"))
	for _, c := range b.res.Checks {
		if !c.OK {
			return 1
		}
	}
	return 0
}

func logf(format string, args ...any) {
	fmt.Fprintf(os.Stderr, "proxybench: "+format+"\n", args...)
}

// bench is one run of the harness.
type bench struct {
	opts     options
	res      results
	tmp      string
	up       *upstreamServer // the local upstream, nil when only gomod runs
	db       *localSumDB     // its checksum database
	mp       *modproxyRunner
	arts     []artifact
	zip      artifact // the zip nearest to 3 MiB
	info     artifact // and the .info and .mod of the same module version
	mod      artifact
	warmDir  string // a modproxy cache dir holding every artifact
	cleanups []func()
}

func (b *bench) onCleanup(f func()) { b.cleanups = append(b.cleanups, f) }

func (b *bench) cleanup() {
	for _, f := range slices.Backward(b.cleanups) {
		f()
	}
	b.cleanups = nil
}

func (b *bench) run(ctx context.Context) error {
	o := b.opts
	b.res.Options = o
	b.res.Machine = machineInfo(ctx)
	logf("%s, %d CPUs, %s", b.res.Machine.CPU, b.res.Machine.NProc, b.res.Machine.Go)

	var err error
	b.tmp, err = os.MkdirTemp("", "proxybench-")
	if err != nil {
		return err
	}
	if o.Keep {
		logf("keeping %s", b.tmp)
	} else {
		tmp := b.tmp
		b.onCleanup(func() { os.RemoveAll(tmp) })
	}

	type phase struct {
		name  string
		local bool // needs the artifacts, the local upstream and its checksum database
		fn    func(context.Context) error
	}
	phases := []phase{
		{"direct", true, b.direct},
		{"fill", true, b.fill},
		{"coalesce", true, b.coalesce},
		{"hits", true, b.hitUnderMisses},
		{"load", true, b.load},
		{"memory", true, b.memory},
		{"gomod", false, b.gomod},
	}
	want := map[string]bool{}
	for _, name := range strings.Split(o.Phases, ",") {
		name = strings.TrimSpace(name)
		if name == "all" {
			for _, p := range phases {
				want[p.name] = true
			}
			continue
		}
		if !slices.ContainsFunc(phases, func(p phase) bool { return p.name == name }) {
			return fmt.Errorf("unknown phase %q", name)
		}
		want[name] = true
	}
	if want["load"] || want["memory"] {
		want["fill"] = true
	}
	if slices.ContainsFunc(phases, func(p phase) bool { return p.local && want[p.name] }) {
		if err := b.setupLocal(ctx); err != nil {
			return err
		}
	}

	// modproxy.
	bin, commit, err := buildModproxy(ctx, b.tmp, o.Rev)
	if err != nil {
		return err
	}
	b.res.Machine.Modproxy = commit
	b.mp = &modproxyRunner{bin: bin, tmp: b.tmp, env: o.ModproxyEnv}
	if b.up != nil {
		b.mp.upstream, b.mp.sumdb = b.up.URL, b.db.Verifier
	}

	for _, p := range phases {
		if err := ctx.Err(); err != nil {
			return err
		}
		if !want[p.name] {
			continue
		}
		logf("phase: %s", p.name)
		if err := p.fn(ctx); err != nil {
			return fmt.Errorf("%s: %w", p.name, err)
		}
	}
	return nil
}

// setupLocal derives the artifacts from the project's go.sum and starts
// the local upstream with its checksum database: what every phase but
// gomod measures against.
func (b *bench) setupLocal(ctx context.Context) error {
	o := b.opts
	sum, err := os.ReadFile(filepath.Join(o.Project, "go.sum"))
	if err != nil {
		return err
	}
	all, err := parseGoSum(sum)
	if err != nil {
		return err
	}
	dl, err := prepareUpstream(ctx, o.Project, o.Cache)
	if err != nil {
		return err
	}
	var missing []artifact
	b.arts, missing, err = resolveArtifacts(all, dl)
	if err != nil {
		return err
	}
	if len(b.arts) == 0 {
		return fmt.Errorf("no artifact of %s/go.sum is in %s", o.Project, dl)
	}
	b.res.Artifacts = artifactSummary(all, b.arts, missing)
	logf("%d artifacts from go.sum, %d of them fetched by go mod download (%.1f MB)", len(all), len(b.arts), float64(b.res.Artifacts.Bytes)/1e6)
	if err := b.pickTargets(); err != nil {
		return err
	}
	b.db, err = newLocalSumDB(ctx, sum)
	if err != nil {
		return err
	}
	b.res.SumDB = fmt.Sprintf("%s, %d module versions recorded, served by the upstream at /sumdb/%s/", b.db.Name, b.db.Records, b.db.Name)
	b.up, err = startUpstream(dl, b.db)
	if err != nil {
		return err
	}
	b.onCleanup(b.up.Close)
	b.up.SetLatency(o.UpstreamLatency)
	return nil
}

// pickTargets chooses the zip nearest to 3 MiB and the .info and .mod of
// the same module version.
func (b *bench) pickTargets() error {
	const want = 3 << 20
	best := -1
	for i, a := range b.arts {
		if a.Kind != "zip" {
			continue
		}
		if best < 0 || abs(a.Size-want) < abs(b.arts[best].Size-want) {
			best = i
		}
	}
	if best < 0 {
		return fmt.Errorf("no zip among the artifacts")
	}
	b.zip = b.arts[best]
	stem := strings.TrimSuffix(b.zip.Path, ".zip")
	for _, a := range b.arts {
		switch a.Path {
		case stem + ".info":
			b.info = a
		case stem + ".mod":
			b.mod = a
		}
	}
	if b.info.Path == "" || b.mod.Path == "" {
		return fmt.Errorf("%s has no .info or .mod among the artifacts", b.zip.Path)
	}
	b.res.Targets = map[string]artifact{"info": b.info, "mod": b.mod, "zip": b.zip}
	return nil
}

// slug makes s usable in a file name.
func slug(s string) string {
	return strings.Map(func(r rune) rune {
		if r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || r == '.' || r == '_' {
			return r
		}
		return '-'
	}, s)
}

func abs(x int64) int64 {
	if x < 0 {
		return -x
	}
	return x
}

// buildModproxy builds ./cmd/modproxy of the module in the working
// directory, or, with rev set, of that git revision (extracted with git
// archive into tmp), and returns the binary and a description of the
// source.
func buildModproxy(ctx context.Context, tmp, rev string) (bin, commit string, err error) {
	gomod, err := goEnv(ctx, "GOMOD")
	if err != nil {
		return "", "", err
	}
	if gomod == "" || gomod == os.DevNull {
		return "", "", fmt.Errorf("run proxybench from the modproxy module (go env GOMOD is empty)")
	}
	root := filepath.Dir(gomod)
	git := func(args ...string) (string, error) {
		out, err := exec.CommandContext(ctx, "git", append([]string{"-C", root}, args...)...).Output()
		return strings.TrimSpace(string(out)), err
	}
	src := root
	commit = "unknown"
	if rev != "" {
		if commit, err = git("rev-parse", "--short", rev+"^{commit}"); err != nil {
			return "", "", fmt.Errorf("git rev-parse %s: %v", rev, err)
		}
		src = filepath.Join(tmp, "src")
		if err := gitArchive(ctx, root, rev, src); err != nil {
			return "", "", err
		}
	} else if c, err := git("rev-parse", "--short", "HEAD"); err == nil {
		commit = c + " (working tree)"
		if st, err := git("status", "--porcelain", "--untracked-files=no"); err == nil && st != "" {
			commit = c + " + uncommitted changes (working tree)"
		}
	}
	bin = filepath.Join(tmp, "modproxy")
	cmd := exec.CommandContext(ctx, "go", "build", "-o", bin, "./cmd/modproxy")
	cmd.Dir = src
	cmd.Env = append(os.Environ(), "GOWORK=off")
	if out, err := cmd.CombinedOutput(); err != nil {
		return "", "", fmt.Errorf("go build ./cmd/modproxy: %v: %s", err, out)
	}
	return bin, commit, nil
}

// gitArchive extracts the tree of rev in the repository at root into dir.
func gitArchive(ctx context.Context, root, rev, dir string) error {
	cmd := exec.CommandContext(ctx, "git", "-C", root, "archive", "--format=tar", rev)
	out, err := cmd.StdoutPipe()
	if err != nil {
		return err
	}
	if err := cmd.Start(); err != nil {
		return err
	}
	tr := tar.NewReader(out)
	var xerr error
	for xerr == nil {
		h, err := tr.Next()
		if err == io.EOF {
			break
		}
		if err != nil {
			xerr = err
			break
		}
		if !filepath.IsLocal(h.Name) {
			xerr = fmt.Errorf("git archive: unsafe path %q", h.Name)
			break
		}
		p := filepath.Join(dir, filepath.FromSlash(h.Name))
		switch h.Typeflag {
		case tar.TypeDir:
			xerr = os.MkdirAll(p, 0o755)
		case tar.TypeReg:
			if xerr = os.MkdirAll(filepath.Dir(p), 0o755); xerr == nil {
				xerr = writeFile(p, tr, os.FileMode(h.Mode)&0o755|0o600)
			}
		}
	}
	_, _ = io.Copy(io.Discard, out)
	if err := cmd.Wait(); err != nil && xerr == nil {
		xerr = fmt.Errorf("git archive %s: %v", rev, err)
	}
	return xerr
}

func writeFile(path string, r io.Reader, mode os.FileMode) error {
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_EXCL, mode)
	if err != nil {
		return err
	}
	if _, err := io.Copy(f, r); err != nil {
		f.Close()
		return err
	}
	return f.Close()
}

// direct fetches every artifact straight from the upstream: the reference.
func (b *bench) direct(ctx context.Context) error {
	c := newClient(b.opts.Parallel, time.Minute)
	defer c.CloseIdleConnections()
	for i := range b.opts.Reps {
		r := fetchAll(ctx, c, b.up.URL, b.arts, b.opts.Parallel)
		logf("direct %d: %v, %d bad", i+1, r.Wall.Round(time.Millisecond), r.Bad)
		b.res.Direct = append(b.res.Direct, r)
	}
	bad := 0
	for _, r := range b.res.Direct {
		bad += r.Bad
	}
	b.res.check("direct fetches: every answer 200 with the upstream's bytes", bad == 0, fmt.Sprintf("%d bad of %d", bad, len(b.arts)*len(b.res.Direct)))
	return nil
}

// fill measures, for each variant: metadata-only requests on an empty
// cache (no zip may be fetched), then reps of a cold fetch of everything
// on an empty cache followed by a warm fetch through the same process.
func (b *bench) fill(ctx context.Context) error {
	var meta []artifact
	for _, a := range b.arts {
		if a.Kind != "zip" {
			meta = append(meta, a)
		}
	}
	for vi, v := range b.opts.Variants {
		vr := variantResult{Variant: v}

		// .info and .mod only, warming off: answering them must never need
		// a zip (warming fetches zips on purpose, after a .mod miss).
		p, err := b.mp.start(filepath.Join(b.tmp, fmt.Sprintf("cache-%s-meta", slug(v.Name))), v, "MODPROXY_WARM_ZIPS=false")
		if err != nil {
			return err
		}
		b.up.Reset()
		c := newClient(b.opts.Parallel, 2*time.Minute)
		r := fetchAll(ctx, c, p.URL(), meta, b.opts.Parallel)
		c.CloseIdleConnections()
		p.Stop()
		vr.Meta = metaRun{fetchRun: r, Upstream: b.countUpstream(meta)}
		b.res.check(v.Name+": no .zip fetched upstream for .info/.mod requests", vr.Meta.Upstream.ByKind["zip"] == 0 && r.Bad == 0,
			fmt.Sprintf("%d .info/.mod requests: %d upstream requests, %d of them .zip; %d bad answers", len(meta), vr.Meta.Upstream.Total, vr.Meta.Upstream.ByKind["zip"], r.Bad))

		for rep := range b.opts.Reps {
			dir := filepath.Join(b.tmp, fmt.Sprintf("cache-%s-%d", slug(v.Name), rep))
			p, err := b.mp.start(dir, v)
			if err != nil {
				return err
			}
			b.up.Reset()
			c := newClient(b.opts.Parallel, 5*time.Minute)
			cold := fetchAll(ctx, c, p.URL(), b.arts, b.opts.Parallel)
			up := b.countUpstream(b.arts)
			warm := fetchAll(ctx, c, p.URL(), b.arts, b.opts.Parallel)
			c.CloseIdleConnections()
			p.Stop()
			rounds, err := readAccessLog(p.Log)
			if err != nil {
				return err
			}
			al, wal := round(rounds, 0), round(rounds, 1)
			logf("%s cold %d: %v, %d upstream requests, %d bad; warm: %v, %d bad", v.Name, rep+1,
				cold.Wall.Round(time.Millisecond), up.Total, cold.Bad, warm.Wall.Round(time.Millisecond), warm.Bad)
			vr.Cold = append(vr.Cold, coldRun{fetchRun: cold, Upstream: up, Log: al})
			vr.Warm = append(vr.Warm, warmRun{fetchRun: warm, Log: wal})
			if vi == 0 && rep == b.opts.Reps-1 {
				b.warmDir = dir
			} else if !b.opts.Keep {
				os.RemoveAll(dir)
			}
		}
		var bad, over, upTotal, warmBad, warmUp int
		for i, cr := range vr.Cold {
			bad += cr.Bad
			upTotal += cr.Upstream.Total
			if cr.Upstream.MaxPerArtifact > 1 {
				over++
			}
			warmBad += vr.Warm[i].Bad
			warmUp += len(b.arts) - vr.Warm[i].Log.Cache["hit"]
		}
		b.res.check(v.Name+": cold fetches: every answer 200 with the upstream's bytes", bad == 0, fmt.Sprintf("%d bad of %d", bad, len(b.arts)*len(vr.Cold)))
		b.res.check(v.Name+": cold fetches: at most 1 upstream fetch per artifact", over == 0,
			fmt.Sprintf("%d of %d runs had an artifact fetched more than once; %d upstream requests in all", over, len(vr.Cold), upTotal))
		b.res.check(v.Name+": warm fetches: every answer 200 with the upstream's bytes, all hits", warmBad == 0 && warmUp == 0,
			fmt.Sprintf("%d bad, %d not hits, of %d", warmBad, warmUp, len(b.arts)*len(vr.Warm)))
		b.res.Variants = append(b.res.Variants, vr)
	}
	return nil
}

// countUpstream summarises the upstream's counts since the last Reset
// against the artifacts that were asked for.
func (b *bench) countUpstream(asked []artifact) upstreamCount {
	counts := b.up.Counts()
	want := map[string]bool{}
	for _, a := range asked {
		want[a.Path] = true
	}
	uc := upstreamCount{ByKind: map[string]int{}}
	for p, n := range counts {
		uc.Total += n
		kind := "other"
		switch {
		case strings.HasPrefix(p, "sumdb/"):
			kind = "sumdb"
		case strings.HasSuffix(p, ".info"):
			kind = "info"
		case strings.HasSuffix(p, ".mod"):
			kind = "mod"
		case strings.HasSuffix(p, ".zip"):
			kind = "zip"
		}
		uc.ByKind[kind] += n
		if want[p] {
			uc.MaxPerArtifact = max(uc.MaxPerArtifact, n)
		} else if kind != "sumdb" {
			uc.Other += n
			if len(uc.OtherExamples) < 5 {
				uc.OtherExamples = append(uc.OtherExamples, p)
			}
		}
	}
	slices.Sort(uc.OtherExamples)
	return uc
}

// coalesce sends N concurrent requests for the cold target zip to a fresh
// modproxy on an empty cache.
func (b *bench) coalesce(ctx context.Context) error {
	v := b.opts.Variants[0]
	p, err := b.mp.start(filepath.Join(b.tmp, "cache-coalesce"), v)
	if err != nil {
		return err
	}
	defer p.Stop()
	b.up.Reset()
	n := b.opts.Coalesce
	c := newClient(n, 5*time.Minute)
	defer c.CloseIdleConnections()
	results := make([]getResult, n)
	startGate := make(chan struct{})
	var wg sync.WaitGroup
	for i := range n {
		wg.Go(func() {
			<-startGate
			results[i] = get(ctx, c, p.URL()+"/"+b.zip.Path)
		})
	}
	start := time.Now()
	close(startGate)
	wg.Wait()
	wall := time.Since(start)
	counts := b.up.Counts()
	p.Stop()
	rounds, err := readAccessLog(p.Log)
	if err != nil {
		return err
	}
	// All 50 requests are for one path: count them all.
	al := sumRounds(rounds)
	cr := coalesceResult{Requests: n, Zip: b.zip.Path, Size: b.zip.Size, Wall: wall, UpstreamFetches: counts[b.zip.Path], Log: al}
	for _, k := range counts {
		cr.UpstreamTotal += k
	}
	var durs []time.Duration
	for _, r := range results {
		durs = append(durs, r.Dur)
		if err := r.check(b.zip); err != nil {
			cr.addError(err)
		}
	}
	cr.Latency = summarize(durs)
	b.res.Coalesce = cr
	logf("coalesce: %d requests, %d upstream fetches, %v, %d bad", n, cr.UpstreamFetches, wall.Round(time.Millisecond), cr.Bad)
	b.res.check(fmt.Sprintf("%d concurrent requests for one cold zip: 1 upstream fetch, every body right", n), cr.UpstreamFetches == 1 && cr.Bad == 0,
		fmt.Sprintf("%d upstream fetches, %d bad answers", cr.UpstreamFetches, cr.Bad))
	return nil
}

// hitUnderMisses times sequential hits of a cached .info, first alone, then
// while M misses whose upstream answers take MissLatency are in flight.
func (b *bench) hitUnderMisses(ctx context.Context) error {
	v := b.opts.Variants[0]
	p, err := b.mp.start(filepath.Join(b.tmp, "cache-hits"), v)
	if err != nil {
		return err
	}
	defer p.Stop()
	hc := newClient(1, time.Minute)
	defer hc.CloseIdleConnections()
	url := p.URL() + "/" + b.info.Path
	if err := get(ctx, hc, url).check(b.info); err != nil {
		return fmt.Errorf("priming the hit: %w", err)
	}
	timeHits := func() ([]time.Duration, int) {
		durs := make([]time.Duration, 0, b.opts.Hits)
		bad := 0
		for range b.opts.Hits {
			r := get(ctx, hc, url)
			durs = append(durs, r.Dur)
			if r.check(b.info) != nil {
				bad++
			}
		}
		return durs, bad
	}
	res := hitResult{Target: b.info.Path, Misses: b.opts.Misses, MissLatency: b.opts.MissLatency}
	idle, bad0 := timeHits()
	res.Idle = summarize(idle)

	// The misses: zips of other module versions, then .info files.
	var misses []artifact
	for _, kind := range []string{"zip", "info", "mod"} {
		for _, a := range b.arts {
			if len(misses) < b.opts.Misses && a.Kind == kind && a.Path != b.zip.Path && a.Path != b.info.Path {
				misses = append(misses, a)
			}
		}
	}
	paths := make([]string, len(misses))
	for i, a := range misses {
		paths[i] = a.Path
	}
	b.up.SetSlow(paths, b.opts.MissLatency)
	defer b.up.SetSlow(nil, 0)
	mc := newClient(len(misses)+1, time.Minute)
	defer mc.CloseIdleConnections()
	missRes := make([]getResult, len(misses))
	var wg sync.WaitGroup
	for i, a := range misses {
		wg.Go(func() { missRes[i] = get(ctx, mc, p.URL()+"/"+a.Path) })
	}
	deadline := time.Now().Add(10 * time.Second)
	for b.up.slowInflight.Load() < int64(len(misses)) && time.Now().Before(deadline) {
		time.Sleep(5 * time.Millisecond)
	}
	res.InFlightAtStart = int(b.up.slowInflight.Load())
	busy, bad1 := timeHits()
	res.InFlightAtEnd = int(b.up.slowInflight.Load())
	res.Busy = summarize(busy)
	wg.Wait()
	missBad := 0
	var missDurs []time.Duration
	for i, r := range missRes {
		missDurs = append(missDurs, r.Dur)
		if r.check(misses[i]) != nil {
			missBad++
		}
	}
	res.MissLatencies = summarize(missDurs)
	res.Bad = bad0 + bad1 + missBad
	logf("hits alone p50 %.2f ms max %.2f ms; with %d misses in flight p50 %.2f ms p99 %.2f ms max %.2f ms",
		res.Idle.P50, res.Idle.Max, res.InFlightAtStart, res.Busy.P50, res.Busy.P99, res.Busy.Max)
	b.res.check("hits timed while all the misses were in flight, every answer right",
		res.Bad == 0 && res.InFlightAtStart == len(misses) && res.InFlightAtEnd == len(misses),
		fmt.Sprintf("%d misses in flight when the hits started, %d when they ended; %d bad answers", res.InFlightAtStart, res.InFlightAtEnd, res.Bad))

	// Misses that hash: the biggest zips not fetched yet, answered at
	// once, so that their fills are spooling, checking and hashing (CPU)
	// while the hits are timed, not waiting on the upstream.
	fetched := map[string]bool{b.zip.Path: true}
	for _, a := range misses {
		fetched[a.Path] = true
	}
	var big []artifact
	for _, a := range b.arts {
		if a.Kind == "zip" && !fetched[a.Path] {
			big = append(big, a)
		}
	}
	slices.SortStableFunc(big, func(x, y artifact) int { return cmp.Compare(y.Size, x.Size) })
	big = big[:min(len(big), b.opts.Misses)]
	var pending atomic.Int64
	pending.Store(int64(len(big)))
	bigRes := make([]getResult, len(big))
	for i, a := range big {
		wg.Go(func() {
			defer pending.Add(-1)
			bigRes[i] = get(ctx, mc, p.URL()+"/"+a.Path)
		})
	}
	res.Hashing.Misses = len(big)
	for _, a := range big {
		res.Hashing.Bytes += a.Size
	}
	hashing, bad2 := timeHits()
	res.Hashing.InFlightAtEnd = int(pending.Load())
	res.Hashing.Hits = summarize(hashing)
	wg.Wait()
	for i, r := range bigRes {
		if r.check(big[i]) != nil {
			bad2++
		}
	}
	res.Hashing.Bad = bad2
	res.Bad += bad2
	b.res.HitUnderMisses = res
	logf("with %d zip misses hashing (%.1f MB; %d still in flight at the end) p50 %.2f ms p99 %.2f ms max %.2f ms",
		len(big), float64(res.Hashing.Bytes)/1e6, res.Hashing.InFlightAtEnd, res.Hashing.Hits.P50, res.Hashing.Hits.P99, res.Hashing.Hits.Max)
	b.res.check("hits timed while zip misses were being filled, every answer right",
		bad2 == 0 && res.Hashing.InFlightAtEnd > 0,
		fmt.Sprintf("%d of %d zip misses still in flight when the hits ended; %d bad answers", res.Hashing.InFlightAtEnd, len(big), bad2))
	return nil
}

// load runs the load generator on the cached .info, .mod and zip through
// modproxy, FileServer and nginx, all serving the same bytes.
func (b *bench) load(ctx context.Context) error {
	tool, note := loadTool(ctx, b.opts.LoadTool, b.opts.Install)
	if tool == "" {
		return fmt.Errorf("load tool: %s", note)
	}
	b.res.LoadTool, b.res.LoadNote = tool, note
	if tool == "wrk" {
		if out, err := exec.CommandContext(ctx, "wrk", "-v").CombinedOutput(); len(out) > 0 || err == nil {
			v, _, _ := strings.Cut(string(out), "\n")
			v, _, _ = strings.Cut(v, " Copyright")
			b.res.LoadToolVersion = strings.TrimSpace(v)
		}
	}
	// Same bytes for every server: a copy of modproxy's objects directory.
	if err := os.Chmod(b.tmp, 0o755); err != nil { // nginx workers run unprivileged
		return err
	}
	docroot, err := b.docroot()
	if err != nil {
		return err
	}
	servers := []struct {
		name string
		url  string
	}{}
	mp, err := b.mp.start(b.warmDir, b.opts.Variants[0])
	if err != nil {
		return err
	}
	defer mp.Stop()
	servers = append(servers, struct{ name, url string }{"modproxy", mp.URL()})
	fsrv, err := startFileServer(docroot, filepath.Join(b.tmp, "fileserver-load.log"))
	if err != nil {
		return err
	}
	defer fsrv.Stop()
	servers = append(servers, struct{ name, url string }{"FileServer", fsrv.URL()})
	if b.opts.Nginx {
		prefix := filepath.Join(b.tmp, "nginx")
		if err := os.Mkdir(prefix, 0o755); err != nil {
			return err
		}
		ng, version, err := startNginx(ctx, prefix, docroot, b.opts.Install)
		b.res.NginxVersion = version
		if err != nil {
			b.res.NginxNote = "nginx skipped: " + err.Error()
			logf("%s", b.res.NginxNote)
		} else {
			defer ng.Stop()
			servers = append(servers, struct{ name, url string }{"nginx", ng.URL()})
		}
	} else {
		b.res.NginxNote = "nginx skipped (-nginx=false)"
	}
	c := newClient(2, time.Minute)
	defer c.CloseIdleConnections()
	targets := []struct {
		name string
		a    artifact
	}{{"info", b.info}, {"mod", b.mod}, {"zip", b.zip}}
	runs := map[[2]string][]loadResult{}
	// Runs are interleaved (every target and server once, then again) so
	// that drift of the machine spreads over all of them.
	for rep := range b.opts.LoadReps {
		for _, t := range targets {
			for _, s := range servers {
				url := s.url + "/" + t.a.Path
				if err := get(ctx, c, url).check(t.a); err != nil {
					return fmt.Errorf("%s before load: %w", s.name, err)
				}
				var r loadResult
				if tool == "wrk" {
					r, err = runWrk(ctx, url, b.opts.Load, t.a.Size)
					if err != nil {
						return err
					}
				} else {
					r = runGoLoad(ctx, url, b.opts.Load, t.a.Size)
				}
				r.Server, r.Target = s.name, t.name
				logf("load %d %s %s: %.0f req/s, p50 %.2f ms, p99 %.2f ms, %.0f MB/s, %d errors", rep+1, s.name, t.name, r.RPS, r.P50, r.P99, r.MBps, r.Errors)
				k := [2]string{t.name, s.name}
				runs[k] = append(runs[k], r)
			}
		}
	}
	for _, t := range targets {
		for _, s := range servers {
			rs := runs[[2]string{t.name, s.name}]
			if len(rs) == 0 {
				continue
			}
			r := medianRun(rs)
			var errs, reqs int64
			var notes []string
			for _, x := range rs {
				errs += x.Errors
				reqs += x.Requests
				r.Runs = append(r.Runs, x.RPS)
				if x.Note != "" {
					notes = append(notes, x.Note)
				}
			}
			r.VsFileServer, r.VsFileServerMedian = ratios(rs, runs[[2]string{t.name, "FileServer"}])
			r.VsNginx, r.VsNginxMedian = ratios(rs, runs[[2]string{t.name, "nginx"}])
			b.res.Load = append(b.res.Load, r)
			b.res.check(fmt.Sprintf("load %s %s: no errors", s.name, t.name), errs == 0 && reqs > 0,
				fmt.Sprintf("%d requests in %d runs, %d errors %s", reqs, len(rs), errs, strings.Join(notes, "; ")))
		}
	}
	return nil
}

// ratios returns 100 * req/s of each run in rs over that of the run of
// ref in the same repetition, and their median; nothing when ref is
// missing. Ratios of runs next to each other in time cancel most drift.
func ratios(rs, ref []loadResult) (each []float64, med float64) {
	if len(ref) != len(rs) {
		return nil, 0
	}
	for i := range rs {
		if ref[i].RPS > 0 {
			each = append(each, 100*rs[i].RPS/ref[i].RPS)
		}
	}
	m := slices.Clone(each)
	slices.Sort(m)
	if len(m) > 0 {
		med = m[(len(m)-1)/2]
	}
	return each, med
}

// medianRun returns the run with the median req/s (the lower middle one
// for an even count), with its latencies.
func medianRun(rs []loadResult) loadResult {
	s := slices.Clone(rs)
	slices.SortFunc(s, func(a, b loadResult) int { return cmp.Compare(a.RPS, b.RPS) })
	return s[(len(s)-1)/2]
}

// docroot returns the directory the reference servers serve: a copy of
// the warm modproxy's objects, made by the first phase that needs it.
func (b *bench) docroot() (string, error) {
	dir := filepath.Join(b.tmp, "docroot")
	if _, err := os.Stat(dir); err == nil {
		return dir, nil
	}
	if err := os.Mkdir(dir, 0o755); err != nil {
		return "", err
	}
	return dir, copyTree(filepath.Join(b.warmDir, "objects"), dir, 0o644, 0o755)
}

// memory measures the peak RSS (VmHWM) of a fresh modproxy, and of a fresh
// FileServer for reference, while N clients download the target zip over
// and over for a few seconds.
func (b *bench) memory(ctx context.Context) error {
	docroot, err := b.docroot()
	if err != nil {
		return err
	}
	for _, name := range []string{"modproxy", "FileServer"} {
		var p *proc
		var err error
		if name == "modproxy" {
			p, err = b.mp.start(b.warmDir, b.opts.Variants[0])
		} else {
			p, err = startFileServer(docroot, filepath.Join(b.tmp, "fileserver-rss.log"))
		}
		if err != nil {
			return err
		}
		m, err := b.downloadLoop(ctx, p)
		p.Stop()
		if err != nil {
			return err
		}
		m.Server = name
		logf("memory %s: idle RSS %d KiB, peak %d KiB, %d downloads, %d bad", name, m.IdleRSSKiB, m.PeakKiB, m.Downloads, m.Bad)
		b.res.Memory = append(b.res.Memory, m)
		b.res.check(fmt.Sprintf("memory %s: %d concurrent zip downloads, every body right", name, b.opts.RSSConns), m.Bad == 0 && m.Downloads > 0,
			fmt.Sprintf("%d downloads, %d bad", m.Downloads, m.Bad))
	}
	return nil
}

func (b *bench) downloadLoop(ctx context.Context, p *proc) (memResult, error) {
	m := memResult{Conns: b.opts.RSSConns, Seconds: b.opts.RSSDuration.Seconds()}
	rss, _, err := memStatus(p.Pid())
	if err != nil {
		return m, err
	}
	m.IdleRSSKiB = rss
	c := newClient(b.opts.RSSConns, time.Minute)
	defer c.CloseIdleConnections()
	lctx, cancel := context.WithTimeout(ctx, b.opts.RSSDuration)
	defer cancel()
	var mu sync.Mutex
	var wg sync.WaitGroup
	url := p.URL() + "/" + b.zip.Path
	start := time.Now()
	for range b.opts.RSSConns {
		wg.Go(func() {
			for lctx.Err() == nil {
				r := get(ctx, c, url)
				mu.Lock()
				if r.check(b.zip) != nil {
					m.Bad++
				} else {
					m.Downloads++
				}
				mu.Unlock()
			}
		})
	}
	wg.Wait()
	m.Seconds = time.Since(start).Seconds()
	m.MBps = float64(m.Downloads) * float64(b.zip.Size) / m.Seconds / 1e6
	_, hwm, err := memStatus(p.Pid())
	if err != nil {
		return m, err
	}
	m.PeakKiB = hwm
	return m, nil
}

// loadAvg returns the 1, 5 and 15 minute load averages, or "".
func loadAvg() string {
	b, err := os.ReadFile("/proc/loadavg")
	if f := strings.Fields(string(b)); err == nil && len(f) >= 3 {
		return strings.Join(f[:3], " ")
	}
	return ""
}

func machineInfo(ctx context.Context) machine {
	m := machine{NProc: runtime.NumCPU(), Go: runtime.Version() + " " + runtime.GOOS + "/" + runtime.GOARCH, Date: time.Now().UTC().Format("2006-01-02 15:04 MST")}
	if out, err := exec.CommandContext(ctx, "nproc").Output(); err == nil {
		fmt.Sscan(string(out), &m.NProc)
	}
	if b, err := os.ReadFile("/proc/cpuinfo"); err == nil {
		for line := range strings.SplitSeq(string(b), "\n") {
			if k, v, ok := strings.Cut(line, ":"); ok && strings.TrimSpace(k) == "model name" {
				m.CPU = strings.TrimSpace(v)
				break
			}
		}
	}
	if b, err := os.ReadFile("/proc/meminfo"); err == nil {
		var kb int64
		if _, err := fmt.Sscanf(string(b), "MemTotal: %d kB", &kb); err == nil {
			m.MemGiB = float64(kb) / (1 << 20)
		}
	}
	m.LoadAvg = loadAvg()
	if out, err := exec.CommandContext(ctx, "uname", "-sr").Output(); err == nil {
		m.Kernel = strings.TrimSpace(string(out))
	}
	if v, err := goEnv(ctx, "GOVERSION"); err == nil && v != "" {
		m.Go = v + " " + runtime.GOOS + "/" + runtime.GOARCH
	}
	return m
}
