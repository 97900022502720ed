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
	output  map[string][]string // buffered output per running test, by package+" "+test
	skips   []skip
	passed  int
	failed  int // tests
	broken  bool
	pkgFail map[string]bool
}

// summarize reads events from r and writes the report to w. It reports
// whether anything failed; err is a read or write error.
func summarize(r io.Reader, w io.Writer) (failed bool, err error) {
	s := &summary{w: w, output: map[string][]string{}, pkgFail: map[string]bool{}}
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
	s.report()
	return s.broken || s.failed > 0 || len(s.pkgFail) > 0, nil
}

func (s *summary) add(e event) {
	key := e.Package + " " + e.Test
	switch {
	case e.Action == "build-output":
		fmt.Fprint(s.w, e.Output)
	case e.Action == "build-fail":
		s.broken = true
	case e.Test == "": // the package's own events
		switch {
		case e.Action == "output" && e.Output != "PASS\n":
			fmt.Fprint(s.w, e.Output)
		case e.Action == "fail":
			s.pkgFail[e.Package] = true
			s.flush(e.Package) // tests that never finished (panic, timeout)
		}
	case e.Action == "output":
		s.output[key] = append(s.output[key], e.Output)
	case e.Action == "pass":
		s.passed++
		delete(s.output, key)
	case e.Action == "fail":
		s.failed++
		s.print(key)
	case e.Action == "skip":
		s.skips = append(s.skips, skip{pkg: e.Package, test: e.Test, reason: reason(s.output[key])})
		delete(s.output, key)
	}
}

// print writes the buffered output of a test, without the === lines that
// only -v shows, and forgets it.
func (s *summary) print(key string) {
	for _, l := range s.output[key] {
		if !strings.HasPrefix(strings.TrimLeft(l, " "), "=== ") {
			fmt.Fprint(s.w, l)
		}
	}
	delete(s.output, key)
}

// flush prints the output of every test of pkg still buffered.
func (s *summary) flush(pkg string) {
	keys := slices.Sorted(maps.Keys(s.output))
	for _, key := range keys {
		if strings.HasPrefix(key, pkg+" ") {
			s.print(key)
		}
	}
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

func (s *summary) report() {
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
