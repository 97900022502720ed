package main

import (
	"encoding/json"
	"fmt"
	"maps"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"time"
)

// results is everything a run measured; it is written as results.json and
// rendered as results.md.
type results struct {
	Machine         machine             `json:"machine"`
	Options         options             `json:"options"`
	Artifacts       artifactStats       `json:"artifacts"`
	Targets         map[string]artifact `json:"targets"`
	Direct          []fetchRun          `json:"direct"`
	Variants        []variantResult     `json:"variants"`
	Coalesce        coalesceResult      `json:"coalesce"`
	HitUnderMisses  hitResult           `json:"hit_under_misses"`
	LoadTool        string              `json:"load_tool"`
	LoadToolVersion string              `json:"load_tool_version,omitempty"`
	LoadNote        string              `json:"load_note,omitempty"`
	NginxVersion    string              `json:"nginx_version,omitempty"`
	NginxNote       string              `json:"nginx_note,omitempty"`
	SumDB           string              `json:"sumdb"`
	Load            []loadResult        `json:"load"`
	Memory          []memResult         `json:"memory"`
	GoMod           []gomodProject      `json:"gomod,omitempty"`
	Checks          []check             `json:"checks"`
}

type machine struct {
	Date       string  `json:"date"`
	NProc      int     `json:"nproc"`
	CPU        string  `json:"cpu"`
	MemGiB     float64 `json:"mem_gib"`
	Kernel     string  `json:"kernel"`
	LoadAvg    string  `json:"loadavg_at_start"`
	LoadAvgEnd string  `json:"loadavg_at_end"`
	Go         string  `json:"go"`
	Modproxy   string  `json:"modproxy"`
}

type artifactStats struct {
	FromGoSum  int            `json:"from_go_sum"`
	Measured   int            `json:"measured"`
	Kinds      map[string]int `json:"kinds"`
	Bytes      int64          `json:"bytes"`
	NotFetched []string       `json:"not_fetched,omitempty"` // in go.sum, not fetched by go mod download
}

func artifactSummary(all, present, missing []artifact) artifactStats {
	s := artifactStats{FromGoSum: len(all), Measured: len(present), Kinds: map[string]int{}}
	for _, a := range present {
		s.Kinds[a.Kind]++
		s.Bytes += a.Size
	}
	for _, a := range missing {
		s.NotFetched = append(s.NotFetched, a.Path)
	}
	return s
}

type check struct {
	Name   string `json:"name"`
	OK     bool   `json:"ok"`
	Detail string `json:"detail"`
}

func (r *results) check(name string, ok bool, detail string) {
	r.Checks = append(r.Checks, check{Name: name, OK: ok, Detail: detail})
	if !ok {
		logf("CHECK FAILED: %s: %s", name, detail)
	}
}

type upstreamCount struct {
	Total          int            `json:"total"`
	ByKind         map[string]int `json:"by_kind"`
	MaxPerArtifact int            `json:"max_per_artifact"`
	Other          int            `json:"other"` // requests for protocol paths that were not asked for
	OtherExamples  []string       `json:"other_examples,omitempty"`
}

type variantResult struct {
	Variant variant   `json:"variant"`
	Meta    metaRun   `json:"meta_only"`
	Cold    []coldRun `json:"cold"`
	Warm    []warmRun `json:"warm"`
}

type metaRun struct {
	fetchRun
	Upstream upstreamCount `json:"upstream"`
}

type coldRun struct {
	fetchRun
	Upstream upstreamCount `json:"upstream"`
	Log      accessLog     `json:"log"`
}

type warmRun struct {
	fetchRun
	Log accessLog `json:"log"`
}

type coalesceResult struct {
	fetchRun
	Requests        int           `json:"requests"`
	Zip             string        `json:"zip"`
	Size            int64         `json:"size"`
	Wall            time.Duration `json:"wall_ns"`
	UpstreamFetches int           `json:"upstream_fetches"`
	UpstreamTotal   int           `json:"upstream_total"`
	Latency         latencies     `json:"latency"`
	Log             accessLog     `json:"log"`
}

type hitResult struct {
	Target          string        `json:"target"`
	Misses          int           `json:"misses"`
	MissLatency     time.Duration `json:"miss_latency_ns"`
	Idle            latencies     `json:"idle"`
	Busy            latencies     `json:"busy"`
	MissLatencies   latencies     `json:"miss_latencies"`
	InFlightAtStart int           `json:"in_flight_at_start"`
	InFlightAtEnd   int           `json:"in_flight_at_end"`
	Bad             int           `json:"bad"`
	// Hashing is the same hits while the biggest uncached zips are
	// filled without upstream delay (their fills check and hash).
	Hashing struct {
		Misses        int       `json:"misses"`
		Bytes         int64     `json:"bytes"`
		Hits          latencies `json:"hits"`
		InFlightAtEnd int       `json:"in_flight_at_end"`
		Bad           int       `json:"bad"`
	} `json:"hashing"`
}

type memResult struct {
	Server     string  `json:"server"`
	Conns      int     `json:"conns"`
	Seconds    float64 `json:"seconds"`
	IdleRSSKiB int64   `json:"idle_rss_kib"`
	PeakKiB    int64   `json:"peak_rss_kib"`
	Downloads  int     `json:"downloads"`
	Bad        int     `json:"bad"`
	MBps       float64 `json:"mb_per_s"`
}

func (r *results) write(dir, md string) error {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return err
	}
	js, err := json.MarshalIndent(r, "", "  ")
	if err != nil {
		return err
	}
	if err := os.WriteFile(filepath.Join(dir, "results.json"), append(js, '\n'), 0o644); err != nil {
		return err
	}
	return os.WriteFile(filepath.Join(dir, "results.md"), []byte(md), 0o644)
}

func secs(d time.Duration) string { return fmt.Sprintf("%.3f s", d.Seconds()) }

func walls[T interface{ wall() time.Duration }](runs []T) []time.Duration {
	var ds []time.Duration
	for _, r := range runs {
		ds = append(ds, r.wall())
	}
	return ds
}

func (f fetchRun) wall() time.Duration { return f.Wall }

func joinSecs(ds []time.Duration) string {
	var s []string
	for _, d := range ds {
		s = append(s, fmt.Sprintf("%.3f", d.Seconds()))
	}
	return strings.Join(s, ", ")
}

func countsText[V int | int64](m map[string]V) string {
	var s []string
	for _, k := range slices.Sorted(maps.Keys(m)) {
		s = append(s, fmt.Sprintf("%s %d", k, m[k]))
	}
	if len(s) == 0 {
		return "none"
	}
	return strings.Join(s, ", ")
}

// markdown renders the results as a report.
func (r *results) markdown() string {
	var b strings.Builder
	p := func(format string, args ...any) { fmt.Fprintf(&b, format, args...) }
	o := r.Options
	m := r.Machine
	p("# modproxy benchmark results\n\n")
	p("| | |\n|---|---|\n")
	p("| date | %s |\n", m.Date)
	p("| machine | nproc %d; %s; %.1f GiB; %s |\n", m.NProc, m.CPU, m.MemGiB, m.Kernel)
	p("| load average (1, 5, 15 min) | %s at the start, %s at the end: the harness itself loads the machine; a 1-minute figure well above nproc at the start means something else is running, and the run should be repeated |\n", m.LoadAvg, m.LoadAvgEnd)
	p("| Go | %s |\n", m.Go)
	p("| modproxy | %s |\n", m.Modproxy)
	a := r.Artifacts
	if r.SumDB != "" { // the local phases ran
		p("| artifacts | %d (%s; %.1f MB) of the %d derived from go.sum; the other %d are go.sum entries `go mod download` does not fetch |\n",
			a.Measured, countsText(a.Kinds), float64(a.Bytes)/1e6, a.FromGoSum, len(a.NotFetched))
		p("| upstream | local GOPROXY on 127.0.0.1 serving the go command's download cache, added latency %v |\n", o.UpstreamLatency)
		p("| checksum database | %s |\n", r.SumDB)
	}
	if len(r.GoMod) > 0 {
		p("| upstream of the `go mod download` sections | the real one: the first entry of `go env GOPROXY`; checksum database: `go env GOSUMDB` |\n")
	}
	if r.LoadTool != "" {
		tool := r.LoadTool
		if tool == "wrk" {
			tool = fmt.Sprintf("wrk -t%d -c%d -d%ds --latency (%s)", o.Load.Threads, o.Load.Conns, int(o.Load.Duration.Seconds()), r.LoadToolVersion)
		} else {
			tool = fmt.Sprintf("Go load generator, %d connections for %v (%s)", o.Load.Conns, o.Load.Duration, r.LoadNote)
		}
		p("| load generator | %s |\n", tool)
	}
	if r.NginxVersion != "" || r.NginxNote != "" {
		p("| nginx | %s %s |\n", r.NginxVersion, r.NginxNote)
	}
	p("\n")

	if len(r.Direct) > 0 || len(r.Variants) > 0 {
		p("## Every artifact, %d in flight\n\n", o.Parallel)
		p("Wall time to GET all %d artifacts, each answer checked (status 200, length, CRC-32). Median of %d runs; each cold run on a fresh process and an empty cache, each warm run right after it through the same process.\n\n", a.Measured, o.Reps)
		p("| measurement | median | runs (s) | vs direct | upstream requests | answers |\n|---|---|---|---|---|---|\n")
		direct := median(walls(r.Direct))
		vs := func(d time.Duration) string {
			if direct == 0 {
				return ""
			}
			return fmt.Sprintf("%.1fx", ratio(d, direct))
		}
		if len(r.Direct) > 0 {
			bad := 0
			for _, d := range r.Direct {
				bad += d.Bad
			}
			p("| direct from the upstream (reference) | %s | %s | 1.0x | | %d bad |\n", secs(direct), joinSecs(walls(r.Direct)), bad)
		}
		for _, v := range r.Variants {
			name := v.Variant.Name
			if len(v.Variant.Args) > 0 {
				name += ": `" + strings.Join(v.Variant.Args, " ") + "`"
			}
			cold := make([]fetchRun, len(v.Cold))
			warm := make([]fetchRun, len(v.Warm))
			cbad, wbad := 0, 0
			var up []string
			maxPer := 0
			for i := range v.Cold {
				cold[i], warm[i] = v.Cold[i].fetchRun, v.Warm[i].fetchRun
				cbad += v.Cold[i].Bad
				wbad += v.Warm[i].Bad
				up = append(up, fmt.Sprint(v.Cold[i].Upstream.Total))
				maxPer = max(maxPer, v.Cold[i].Upstream.MaxPerArtifact)
			}
			if len(v.Cold) == 0 {
				continue
			}
			cm, wm := median(walls(cold)), median(walls(warm))
			p("| cold through modproxy (%s) | %s | %s | %s | %s per run (first: %s); at most %d per artifact | %d bad; log of first run: %s |\n",
				name, secs(cm), joinSecs(walls(cold)), vs(cm), strings.Join(up, ", "), countsText(v.Cold[0].Upstream.ByKind), maxPer, cbad, countsText(v.Cold[0].Log.Cache))
			p("| warm through modproxy (%s) | %s | %s | %s | 0 | %d bad; log of first run: %s |\n",
				name, secs(wm), joinSecs(walls(warm)), vs(wm), wbad, countsText(v.Warm[0].Log.Cache))
			p("| .info and .mod only, cold (%s) | %s | | | %d (%s) | %d bad |\n",
				name, secs(v.Meta.Wall), v.Meta.Upstream.Total, countsText(v.Meta.Upstream.ByKind), v.Meta.Bad)
		}
		p("\n")
	}

	if c := r.Coalesce; c.Requests > 0 {
		p("## %d concurrent requests for one cold zip\n\n", c.Requests)
		p("| zip | upstream fetches | wall time | per request p50 / max | answers | access log |\n|---|---|---|---|---|---|\n")
		p("| `%s` (%.2f MB) | %d (%d upstream requests in all) | %s | %.1f / %.1f ms | %d bad | %s |\n\n",
			c.Zip, float64(c.Size)/1e6, c.UpstreamFetches, c.UpstreamTotal, secs(c.Wall), c.Latency.P50, c.Latency.Max, c.Bad, countsText(c.Log.Cache))
	}

	if h := r.HitUnderMisses; h.Idle.N > 0 {
		p("## A cached hit while %d misses are in flight\n\n", h.Misses)
		p("%d sequential GETs of the cached `%s` on one connection, first alone, then while %d cold misses (the upstream answers each after %v) are in flight: %d were in flight when the hits started, %d when they ended.\n\n",
			h.Idle.N, h.Target, h.Misses, h.MissLatency, h.InFlightAtStart, h.InFlightAtEnd)
		p("| | p50 | p99 | max |\n|---|---|---|---|\n")
		p("| hits, alone | %.3f ms | %.3f ms | %.3f ms |\n", h.Idle.P50, h.Idle.P99, h.Idle.Max)
		p("| hits, %d misses in flight | %.3f ms | %.3f ms | %.3f ms |\n", h.Misses, h.Busy.P50, h.Busy.P99, h.Busy.Max)
		p("| the misses themselves | %.0f ms | %.0f ms | %.0f ms |\n", h.MissLatencies.P50, h.MissLatencies.P99, h.MissLatencies.Max)
		if hs := h.Hashing; hs.Hits.N > 0 {
			p("| hits, %d zip misses hashing (%.1f MB, no upstream delay; %d still in flight at the end) | %.3f ms | %.3f ms | %.3f ms |\n", hs.Misses, float64(hs.Bytes)/1e6, hs.InFlightAtEnd, hs.Hits.P50, hs.Hits.P99, hs.Hits.Max)
		}
		p("\n")
	}

	if len(r.Load) > 0 {
		p("## Load on cached hits\n\n")
		p("Every server serves the same bytes (FileServer and nginx from a copy of modproxy's objects directory). %d interleaved runs of each: req/s is the median run, with its latencies; %% of FileServer and %% of nginx are the medians of the ratios of runs made next to each other (each run's ratio in parentheses).\n\n", o.LoadReps)
		p("| target | server | req/s | %% of FileServer | %% of nginx | p50 | p99 | MB/s | all runs, req/s |\n|---|---|---|---|---|---|---|---|---|\n")
		for _, l := range r.Load {
			name := l.Target
			if t, ok := r.Targets[l.Target]; ok {
				name = fmt.Sprintf(".%s (%s B)", l.Target, groupDigits(t.Size))
			}
			var all []string
			for _, x := range l.Runs {
				all = append(all, groupDigits(int64(x+0.5)))
			}
			p("| %s | %s | %s | %s | %s | %.2f ms | %.2f ms | %.0f | %s |\n", name, l.Server, groupDigits(int64(l.RPS+0.5)),
				pctCell(l.VsFileServer, l.VsFileServerMedian), pctCell(l.VsNginx, l.VsNginxMedian), l.P50, l.P99, l.MBps, strings.Join(all, ", "))
		}
		if t, ok := r.Targets["zip"]; ok {
			p("\nTargets: `%s` and its .info and .mod.\n", t.Path)
		}
		p("\n")
	}

	if len(r.Memory) > 0 {
		p("## Memory while serving %d concurrent downloads of the zip\n\n", o.RSSConns)
		p("Fresh process, the zip cached; downloads repeated for %v; VmRSS before and VmHWM (peak RSS) after, from /proc/PID/status.\n\n", o.RSSDuration)
		p("| server | RSS idle | peak RSS | downloads | MB/s | bad |\n|---|---|---|---|---|---|\n")
		for _, mr := range r.Memory {
			p("| %s | %.1f MiB | %.1f MiB | %d | %.0f | %d |\n", mr.Server, float64(mr.IdleRSSKiB)/1024, float64(mr.PeakKiB)/1024, mr.Downloads, mr.MBps, mr.Bad)
		}
		p("\n")
	}

	r.gomodMarkdown(&b)

	p("## Checks\n\n")
	for _, c := range r.Checks {
		mark := "x"
		if !c.OK {
			mark = " "
		}
		p("- [%s] %s: %s\n", mark, c.Name, c.Detail)
	}
	return b.String()
}

func ratio(a, b time.Duration) float64 {
	if b == 0 {
		return 0
	}
	return float64(a) / float64(b)
}

// groupDigits writes n with thin groups of three digits: 12,345.
func groupDigits(n int64) string {
	s := fmt.Sprint(n)
	var out []byte
	for i := range s {
		if i > 0 && (len(s)-i)%3 == 0 && s[i-1] != '-' {
			out = append(out, ',')
		}
		out = append(out, s[i])
	}
	return string(out)
}

// pctCell is a table cell of ratios: their median, then each run's.
func pctCell(each []float64, med float64) string {
	if len(each) == 0 {
		return ""
	}
	var ss []string
	for _, x := range each {
		ss = append(ss, fmt.Sprintf("%.0f", x))
	}
	return fmt.Sprintf("%.0f %% (%s)", med, strings.Join(ss, ", "))
}
