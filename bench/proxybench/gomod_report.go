package main

import (
	"fmt"
	"slices"
	"strings"
	"time"
)

// walls returns the wall times of configuration c over the rounds where it
// succeeded.
func (pr gomodProject) walls(c string) []time.Duration {
	var ds []time.Duration
	for _, rr := range pr.Rounds {
		if r, ok := rr.Runs[c]; ok && r.Err == "" {
			ds = append(ds, r.Wall)
		}
	}
	return ds
}

// roundRatios returns num/den for every round where both succeeded: the
// runs of a round are minutes apart, so their ratio cancels most of the
// machine's drift.
func (pr gomodProject) roundRatios(num, den string) []float64 {
	var xs []float64
	for _, rr := range pr.Rounds {
		n, ok1 := rr.Runs[num]
		d, ok2 := rr.Runs[den]
		if ok1 && ok2 && n.Err == "" && d.Err == "" && d.Wall > 0 {
			xs = append(xs, ratio(n.Wall, d.Wall))
		}
	}
	return xs
}

func minMax(ds []time.Duration) (lo, hi time.Duration) {
	if len(ds) == 0 {
		return 0, 0
	}
	return slices.Min(ds), slices.Max(ds)
}

func joinRatios(xs []float64) string {
	var s []string
	for _, x := range xs {
		s = append(s, fmt.Sprintf("%.2f", x))
	}
	return strings.Join(s, ", ")
}

func upstreamText(u upstreamMetrics) string {
	return fmt.Sprintf("%d (fetches: %s; retries %d)", u.Requests, countsText(u.Fetches), u.Retries)
}

// gomodMarkdown renders the gomod phase.
func (r *results) gomodMarkdown(b *strings.Builder) {
	p := func(format string, args ...any) { fmt.Fprintf(b, format, args...) }
	o := r.Options.GoMod
	cold := "cold modproxy (fresh cache directory, `modproxy serve` with its defaults)"
	if env := r.Options.ModproxyEnv; len(env) > 0 {
		cold = "cold modproxy (fresh cache directory, `modproxy serve` with its defaults and `" + strings.Join(env, " ") + "`)"
	}
	// configs names the configurations of a round in report order.
	configs := []struct{ key, name string }{
		{cfgDirect, "straight from the upstream (GOPROXY = the upstream, the go command's defaults)"},
		{cfgCold, cold},
		{cfgWarm, "warm modproxy (the same process right after, fresh module cache)"},
		{cfgFile, "`file://` GOPROXY over the cold run's cache/download (the limit for a warm proxy)"},
	}

	// ratios are the ratios reported, with the goals.
	ratios := []struct {
		num, den string
		goal     float64
	}{
		{cfgCold, cfgDirect, 1.0},
		{cfgWarm, cfgDirect, 0.25},
		{cfgWarm, cfgFile, 1.2},
	}
	for _, pr := range r.GoMod {
		p("## `go mod download` with a fresh module cache: `%s`\n\n", pr.Project)
		var ref gomodRun
		for _, rr := range pr.Rounds {
			for _, c := range configs {
				if x, ok := rr.Runs[c.key]; ok && x.Err == "" && ref.Download.Files == 0 {
					ref = x
				}
			}
		}
		sumdbNote := "none: go.sum holds every hash, so the go command checks the downloads against go.sum and never asks the database, through a proxy or not"
		if n := ref.Download.SumDBFiles; n > 0 {
			sumdbNote = fmt.Sprintf("%d lookups and tiles (go.sum lacks some hashes)", n)
		}
		p("The real go command, each run with a copy of the project, a GOPATH and module cache of its own (GOFLAGS adds `-modcacherw`; GOTOOLCHAIN=local; GOSUMDB = `go env GOSUMDB`), "+
			"against the real upstream, the first entry of `go env GOPROXY`. Interleaved rounds: %d (direct first in odd rounds, last in even ones). "+
			"Each run leaves %d .info/.mod/.zip files (%.1f MB) in cache/download. The go command's own checksum-database traffic: %s. "+
			"modproxy verifies everything it admits against the default database, through the upstream's /sumdb/.\n\n",
			len(pr.Rounds), ref.Download.Files, float64(ref.Download.Bytes)/1e6, sumdbNote)
		p("| configuration | median | min | max | runs (s) | go command CPU, median (user + sys) |\n|---|---|---|---|---|---|\n")
		for _, c := range configs {
			ws := pr.walls(c.key)
			if len(ws) == 0 {
				p("| %s | failed | | | | |\n", c.name)
				continue
			}
			var cpu []time.Duration
			for _, rr := range pr.Rounds {
				if x, ok := rr.Runs[c.key]; ok && x.Err == "" {
					cpu = append(cpu, x.UserCPU+x.SysCPU)
				}
			}
			lo, hi := minMax(ws)
			p("| %s | %s | %s | %s | %s | %s |\n", c.name, secs(median(ws)), secs(lo), secs(hi), joinSecs(ws), secs(median(cpu)))
		}
		p("\n| ratio | of the medians | in each round | goal (issue 11) |\n|---|---|---|---|\n")
		for _, q := range ratios {
			n, d := median(pr.walls(q.num)), median(pr.walls(q.den))
			if n == 0 || d == 0 {
				continue
			}
			x := ratio(n, d)
			met := "met"
			if x > q.goal {
				met = "not met"
			}
			p("| %s / %s | %.2fx | %s | <= %.2gx: %s |\n", q.num, q.den, x, joinRatios(pr.roundRatios(q.num, q.den)), q.goal, met)
		}
		p("\nmodproxy in each round (upstream requests from its /metrics: fetches by result, plus retries; cache outcomes from its access log):\n\n")
		p("| round | order | cold fill: upstream requests | modproxy CPU | peak RSS | cold: access log | warm: upstream requests | warm: access log |\n|---|---|---|---|---|---|---|---|\n")
		for i, rr := range pr.Rounds {
			ps := rr.Proxy
			p("| %d | %s | %s | %s | %.1f MiB | %s | %d | %s |\n", i+1, strings.Join(rr.Order, ", "), upstreamText(ps.ColdUpstream), secs(ps.ColdCPU),
				float64(ps.PeakRSSKiB)/1024, countsText(ps.ColdLog.Cache), ps.WarmUpstream.Requests, countsText(ps.WarmLog.Cache))
		}
		for i, rr := range pr.Rounds {
			for _, e := range rr.Errors {
				p("\nRound %d: %s\n", i+1, e)
			}
		}
		p("\n")

		if len(pr.Fleet) == 0 {
			continue
		}
		p("### %d concurrent `go mod download` of the same project (a CI fleet starting at once)\n\n", o.Fleet)
		p("All clients start together, each with its own module cache; wall time of each from the common start. The median client is the lower middle one.\n\n")
		p("| round | configuration | slowest | median client | fastest | all (s) |\n|---|---|---|---|---|---|\n")
		for i, fr := range pr.Fleet {
			for _, c := range []struct {
				name string
				runs []gomodRun
			}{{"straight from the upstream", fr.Direct}, {"one cold modproxy", fr.Cold}} {
				ws := fleetWalls(c.runs)
				slices.Sort(ws)
				bad := len(c.runs) - len(ws)
				lo, hi := minMax(ws)
				note := ""
				if bad > 0 {
					note = fmt.Sprintf(" (%d failed)", bad)
				}
				p("| %d | %s%s | %s | %s | %s | %s |\n", i+1, c.name, note, secs(hi), secs(median(ws)), secs(lo), joinSecs(ws))
			}
		}
		p("\n| round | order | slowest cold / direct | median cold / direct | cold fill: upstream requests | modproxy CPU | peak RSS | access log |\n|---|---|---|---|---|---|---|---|\n")
		for i, fr := range pr.Fleet {
			dw, cw := fleetWalls(fr.Direct), fleetWalls(fr.Cold)
			_, dh := minMax(dw)
			_, ch := minMax(cw)
			ps := fr.Proxy
			p("| %d | %s | %.2fx | %.2fx | %s | %s | %.1f MiB | %s |\n", i+1, strings.Join(fr.Order, ", "), ratio(ch, dh), ratio(median(cw), median(dw)),
				upstreamText(ps.ColdUpstream), secs(ps.ColdCPU), float64(ps.PeakRSSKiB)/1024, countsText(ps.ColdLog.Cache))
		}
		p("\n")
	}
}

// fleetWalls returns the wall times of the clients that succeeded.
func fleetWalls(runs []gomodRun) []time.Duration {
	var ws []time.Duration
	for _, x := range runs {
		if x.Err == "" {
			ws = append(ws, x.Wall)
		}
	}
	return ws
}
