// Command testsummary reads the output of `go test -json` on standard
// input and prints what `go test` prints without -v (the output of failed
// tests, build errors and one line per package), then every skipped test
// with its reason, and a count of passed, failed and skipped tests.
// It exits 1 when a test, a package or a build failed.
//
//	go test -json ./... | testsummary
//
// ./scripts/test runs it; lines that are not JSON events are copied as they
// are.
package main

import (
	"bufio"
	"encoding/json"
	"fmt"
	"io"
	"maps"
	"os"
	"slices"
	"strings"
)

func main() {
	failed, err := summarize(os.Stdin, os.Stdout)
	if err != nil {
		fmt.Fprintln(os.Stderr, "testsummary:", err)
		os.Exit(2)
	}
	if failed {
		os.Exit(1)
	}
}

// event is one line of `go test -json` (cmd/test2json), build events
// included.
type event struct {
	Action     string
	Package    string
	Test       string
	Output     string
	ImportPath string // build-output and build-fail
}

// skip is a skipped test and the reason it logged.
type skip struct {
	pkg, test, reason string
}

// summary accumulates the state of a run.
type summary struct {
	w       io.Writer
	output  map[string][]string         // output of each running test, by package+" "+test
	report  map[string]*strings.Builder // what is printed when a package ends: failed tests' output
	lines   map[string]*strings.Builder // ... then the package's own lines ("ok", "FAIL")
	skips   []skip
	passed  int
	failed  int // tests
	broken  bool
	pkgFail map[string]bool
}

// summarize reads events from r and writes the report to w. It reports
// whether anything failed; err is a read or write error. Like go test, it
// prints each package's failures and result line together when the
// package is done, and build errors as they come.
func summarize(r io.Reader, w io.Writer) (failed bool, err error) {
	s := &summary{w: w, output: map[string][]string{}, report: map[string]*strings.Builder{},
		lines: map[string]*strings.Builder{}, pkgFail: map[string]bool{}}
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 0, 64<<10), 16<<20)
	for sc.Scan() {
		line := sc.Text()
		var e event
		if !strings.HasPrefix(line, "{") || json.Unmarshal([]byte(line), &e) != nil {
			fmt.Fprintln(w, line)
			continue
		}
		s.add(e)
	}
	if err := sc.Err(); err != nil {
		return true, err
	}
	for _, pkg := range slices.Sorted(maps.Keys(s.lines)) { // packages that never ended
		s.end(pkg)
	}
	s.summary()
	return s.broken || s.failed > 0 || len(s.pkgFail) > 0, nil
}

// buf returns the builder for pkg in m.
func buf(m map[string]*strings.Builder, pkg string) *strings.Builder {
	if m[pkg] == nil {
		m[pkg] = &strings.Builder{}
	}
	return m[pkg]
}

func (s *summary) add(e event) {
	key := e.Package + " " + e.Test
	switch {
	case e.Action == "build-output":
		fmt.Fprint(s.w, e.Output)
	case e.Action == "build-fail":
		s.broken = true
	case e.Test == "": // the package's own events
		switch e.Action {
		case "output":
			if e.Output != "PASS\n" {
				buf(s.lines, e.Package).WriteString(e.Output)
			}
		case "fail":
			s.pkgFail[e.Package] = true
			s.end(e.Package)
		case "pass", "skip":
			s.end(e.Package)
		}
	case e.Action == "output":
		s.output[key] = append(s.output[key], e.Output)
	case e.Action == "pass":
		s.passed++
		delete(s.output, key)
	case e.Action == "fail":
		s.failed++
		s.keep(key, e.Package)
	case e.Action == "skip":
		s.skips = append(s.skips, skip{pkg: e.Package, test: e.Test, reason: reason(s.output[key])})
		delete(s.output, key)
	}
}

// keep moves the output of a test into its package's report, without the
// === lines that only -v shows.
func (s *summary) keep(key, pkg string) {
	b := buf(s.report, pkg)
	for _, l := range s.output[key] {
		if !strings.HasPrefix(strings.TrimLeft(l, " "), "=== ") {
			b.WriteString(l)
		}
	}
	delete(s.output, key)
}

// end prints the report of a package that is done: its failed tests, the
// tests that never finished (a panic, a timeout), then its own lines.
func (s *summary) end(pkg string) {
	for _, key := range slices.Sorted(maps.Keys(s.output)) {
		if strings.HasPrefix(key, pkg+" ") {
			s.keep(key, pkg)
		}
	}
	fmt.Fprint(s.w, buf(s.report, pkg).String(), buf(s.lines, pkg).String())
	delete(s.report, pkg)
	delete(s.lines, pkg)
}

// reason is what a skipped test logged: its output without the === and
// --- SKIP lines, one line.
func reason(out []string) string {
	var parts []string
	for _, l := range out {
		l = strings.TrimSpace(l)
		if l == "" || strings.HasPrefix(l, "=== ") || strings.HasPrefix(l, "--- SKIP") {
			continue
		}
		parts = append(parts, l)
	}
	if len(parts) == 0 {
		return "(no reason given)"
	}
	return strings.Join(parts, " / ")
}

func (s *summary) summary() {
	if len(s.skips) > 0 {
		fmt.Fprintf(s.w, "\nskipped tests (%d):\n", len(s.skips))
		for _, k := range s.skips {
			fmt.Fprintf(s.w, "  %s %s: %s\n", k.pkg, k.test, k.reason)
		}
	}
	fmt.Fprintf(s.w, "\ntests: %d passed, %d failed, %d skipped", s.passed, s.failed, len(s.skips))
	if n := len(s.pkgFail); n > 0 {
		fmt.Fprintf(s.w, "; failed packages: %d", n)
	}
	if s.broken {
		fmt.Fprint(s.w, "; build failed")
	}
	fmt.Fprintln(s.w)
}
