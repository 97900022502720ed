package explain

import (
	"bufio"
	"bytes"
	"errors"
	"io"
	"slices"
	"sort"
	"strings"
)

// Finding is one recognised go error in the input.
type Finding struct {
	ID       string   `json:"id"` // stable catalog id, e.g. "checksum-mismatch"
	Title    string   `json:"title"`
	Line     int      `json:"line"`             // 1-based line in the input
	Text     string   `json:"text"`             // the matched line, trimmed, at most ~300 bytes
	Module   string   `json:"module,omitempty"` // module path (and @version) when present
	Cause    string   `json:"cause"`
	Fix      string   `json:"fix"`
	Commands []string `json:"commands,omitempty"` // exact commands, with the module filled in where known
	Count    int      `json:"count"`              // occurrences folded into this finding (>= 1), see package doc
}

const (
	// MaxLineBytes is how much of one input line is examined; the rest of a
	// longer line is read and discarded.
	MaxLineBytes = 64 << 10
	// MaxTextBytes bounds Finding.Text.
	MaxTextBytes = 300
	// MaxFindings bounds the number of distinct findings kept for one
	// input; later distinct errors are ignored (repeats are still counted).
	MaxFindings = 10000

	contextLines = 8 // lines kept to find the header of a multi-line message
	followWindow = 8 // how far a continuation line may be from its finding
	commandGap   = 6 // how far a suggested command may be from its finding
)

// Explainer recognises go errors using a compiled catalog. It is immutable
// and safe for concurrent use.
type Explainer struct {
	entries []Entry // catalog order
	order   []int   // indexes into entries, highest priority first
	ex      *extractor
}

// New compiles the catalog into an Explainer.
func New() *Explainer {
	x := &Explainer{entries: Catalog(), ex: newExtractor()}
	x.order = make([]int, len(x.entries))
	for i := range x.order {
		x.order[i] = i
	}
	sort.SliceStable(x.order, func(a, b int) bool {
		return x.entries[x.order[a]].Priority > x.entries[x.order[b]].Priority
	})
	return x
}

// Explain scans r line by line and returns the findings in input order. It
// uses a fresh Explainer; callers explaining many inputs should reuse one
// from New.
func Explain(r io.Reader) ([]Finding, error) {
	return New().Explain(r)
}

// Explain scans r line by line and returns the findings in input order. On
// a read error it returns the findings so far together with the error.
func (x *Explainer) Explain(r io.Reader) ([]Finding, error) {
	s := &scan{x: x, last: -1, seen: map[string]int{}}
	br := bufio.NewReaderSize(r, MaxLineBytes)
	buf := make([]byte, 0, 4096)
	n := 0
	for {
		line, err := readLine(br, buf[:0])
		buf = line[:0]
		if err == nil || len(line) > 0 {
			n++
			s.line(n, string(line))
		}
		if err != nil {
			if errors.Is(err, io.EOF) {
				return s.out, nil
			}
			return s.out, err
		}
	}
}

// Classify returns the catalog entry that best explains a single line, if
// any. It does not apply multi-line rules (continuations, context).
func (x *Explainer) Classify(line string) (Entry, bool) {
	line = x.clean(line)
	i, _ := x.classify(line, strings.ToLower(line), false)
	if i < 0 {
		return Entry{}, false
	}
	e := x.entries[i]
	e.Commands = slices.Clone(e.Commands)
	e.needles = slices.Clone(e.needles)
	e.follows = slices.Clone(e.follows)
	return e, true
}

// readLine reads one line into buf, keeping at most MaxLineBytes of it and
// discarding the rest, so memory stays bounded whatever the input. The
// newline (and a trailing CR) is removed. err is nil when a newline ended
// the line.
func readLine(br *bufio.Reader, buf []byte) ([]byte, error) {
	for {
		chunk, err := br.ReadSlice('\n')
		if room := MaxLineBytes - len(buf); room > 0 {
			buf = append(buf, chunk[:min(len(chunk), room)]...)
		}
		if errors.Is(err, bufio.ErrBufferFull) {
			continue
		}
		return bytes.TrimRight(buf, "\r\n"), err
	}
}

func (x *Explainer) clean(line string) string {
	if strings.IndexByte(line, 0x1b) >= 0 {
		line = x.ex.ansi.ReplaceAllString(line, "")
	}
	return strings.TrimRight(line, " \t\r\n")
}

// classify returns the index of the highest-priority entry matching line
// and the submatch indexes, or -1. When remote is set the line reports an
// error seen by a server (a proxy's "server response:"), so entries about
// this machine's network and file system do not apply.
func (x *Explainer) classify(line, lower string, remote bool) (int, []int) {
	for _, i := range x.order {
		e := &x.entries[i]
		if remote && (e.Category == CatNetwork || e.Category == CatLocal || e.here) {
			continue
		}
		if !e.prefilter(lower) {
			continue
		}
		if loc := e.re.FindStringSubmatchIndex(line); loc != nil {
			return i, loc
		}
	}
	return -1, nil
}

// scan is the state of one Explain call.
type scan struct {
	x        *Explainer
	out      []Finding
	meta     []meta         // parallel to out
	seen     map[string]int // de-duplication key -> index in out
	recent   []string       // previous lines (at most contextLines), oldest first
	last     int            // index in out of the most recent finding, or -1
	lastLine int            // input line of the most recent finding or continuation
	open     bool           // indented lines still belong to out[last]
	remote   bool           // inside the indented detail of a "server response:"
}

// meta is what a finding needs to recompute its texts and commands.
type meta struct {
	entry     *Entry
	vars      map[string]string // named captures, plus host from the line
	captured  []string          // commands the go command suggested in the input
	toolchain string            // the toolchain being downloaded when the error happened, if any
}

func (s *scan) line(n int, raw string) {
	line := s.x.clean(raw)
	defer s.remember(line)
	trimmed := strings.TrimSpace(line)
	if trimmed == "" {
		return
	}
	indented := line[0] == ' ' || line[0] == '\t'
	lower := strings.ToLower(line)
	if !indented {
		s.remote = false
	}
	if strings.Contains(lower, "server response:") {
		s.remote = true
	}
	i, loc := s.x.classify(line, lower, s.remote)
	if i < 0 {
		s.continuation(n, line, trimmed, indented)
		return
	}
	e := &s.x.entries[i]
	if s.last >= 0 && n-s.lastLine <= followWindow && e.continues(s.out[s.last].ID) {
		s.lastLine = n
		return
	}

	vars := map[string]string{}
	names := e.re.SubexpNames()
	for k := 1; k < len(names); k++ {
		if names[k] != "" && loc[2*k] >= 0 {
			vars[names[k]] = line[loc[2*k]:loc[2*k+1]]
		}
	}
	if len(e.refines) > 0 {
		// Only a better explanation of the finding just reported: on its
		// own the line says too little.
		if s.last >= 0 && n-s.lastLine <= followWindow && slices.Contains(e.refines, s.out[s.last].ID) {
			s.refine(s.last, e, vars)
			s.lastLine = n
		}
		return
	}
	module := s.module(vars, line, indented || e.back)
	if vars["host"] == "" {
		if h := s.x.ex.host(vars["url"]); h != "" {
			vars["host"] = h
		} else if h := vars["wanted"]; h != "" {
			vars["host"] = h
		} else if h := s.x.ex.host(line); h != "" {
			vars["host"] = h
		} else if h, _, _ := strings.Cut(module, "/"); strings.Contains(h, ".") && !strings.Contains(h, "@") {
			vars["host"] = h
		}
	}

	// Identical errors collapse. Errors about this machine (file system)
	// collapse per entry, network errors per host: repeating them per file
	// or per module adds nothing.
	key := e.ID + "\x00"
	switch e.Category {
	case CatLocal:
	case CatNetwork:
		key += vars["host"]
	default:
		key += s.x.ex.decor.ReplaceAllString(trimmed, "")
	}
	if j, ok := s.seen[key]; ok {
		s.out[j].Count++
		s.last, s.lastLine, s.open = j, n, false
		return
	}
	if len(s.out) >= MaxFindings {
		return
	}

	// Text: the line without leading blanks, cut around the match.
	lead := len(line) - len(strings.TrimLeft(line, " \t"))
	s.out = append(s.out, Finding{
		ID:     e.ID,
		Title:  e.Title,
		Line:   n,
		Text:   truncateText(trimmed, loc[0]-lead, MaxTextBytes),
		Module: module,
		Count:  1,
	})
	s.meta = append(s.meta, meta{entry: e, vars: vars, toolchain: s.x.ex.toolchain(line)})
	s.last, s.lastLine, s.open = len(s.out)-1, n, true
	s.seen[key] = s.last
	s.describe(s.last)
	s.commands(s.last)
}

// refine lets entry e take over finding i, keeping its line, text and
// module; values e captured are added to those already known.
func (s *scan) refine(i int, e *Entry, vars map[string]string) {
	m := &s.meta[i]
	m.entry = e
	for k, v := range vars {
		if m.vars[k] == "" {
			m.vars[k] = v
		}
	}
	s.out[i].ID, s.out[i].Title = e.ID, e.Title
	s.describe(i)
	s.commands(i)
}

// describe sets the cause and fix of finding i from its entry, adding the
// toolchain switch the error happened in (unless the entry is about
// toolchains itself).
func (s *scan) describe(i int) {
	m, f := &s.meta[i], &s.out[i]
	f.Cause, f.Fix = m.entry.Cause, m.entry.Fix
	if m.toolchain != "" && m.entry.Category != CatToolchain {
		f.Cause += " It happened while switching toolchains: GOTOOLCHAIN, or the go or toolchain line of go.mod or go.work, asks for " + m.toolchain +
			", which the go command downloads as the module golang.org/toolchain through GOPROXY and verifies in the checksum database (GOSUMDB) like any module."
		f.Fix += " Until the download works, GOTOOLCHAIN=local keeps the installed Go (which refuses a go.mod that requires a newer one); or install " + m.toolchain +
			" yourself and use GOTOOLCHAIN=path."
	}
}

// commands recomputes the commands of finding i.
func (s *scan) commands(i int) {
	m := &s.meta[i]
	cmds := append([]string(nil), m.captured...)
	rendered := s.x.ex.render(m.entry.Commands, m.vars, s.out[i].Module)
	if m.toolchain != "" && m.entry.Category != CatToolchain {
		rendered = append(rendered, "go env GOTOOLCHAIN GOPROXY GOSUMDB", "GOTOOLCHAIN=local go version")
	}
	for _, c := range rendered {
		if !slices.Contains(cmds, c) {
			cmds = append(cmds, c)
		}
	}
	s.out[i].Commands = cmds
}

// module finds the module a matched line is about. With back set, the lines
// before it that belong to the same message are searched too.
func (s *scan) module(vars map[string]string, line string, back bool) string {
	ex := s.x.ex
	if m := vars["mod"]; m != "" {
		p, v, _ := strings.Cut(m, "@")
		if validPath(p) {
			return join(p, cleanVersion(v))
		}
	}
	if p := vars["path"]; validPath(p) {
		if v := vars["version"]; v != "" {
			return join(p, cleanVersion(v))
		}
		if m := ex.module(line); strings.HasPrefix(m, p+"@") {
			return m
		}
		return p
	}
	if m := ex.module(line); m != "" {
		return m
	}
	if !back {
		return ""
	}
	// A continuation line: look back to the lines of the same message, up
	// to and including its (unindented) header line.
	for k := len(s.recent) - 1; k >= 0; k-- {
		prev := s.recent[k]
		if strings.TrimSpace(prev) == "" {
			break
		}
		if m := ex.module(prev); m != "" {
			return m
		}
		if prev[0] != ' ' && prev[0] != '\t' {
			break
		}
	}
	return ""
}

// continuation handles a line that matched no entry: it may complete the
// most recent finding with a module or with a command the go command
// suggested for it.
func (s *scan) continuation(n int, line, trimmed string, indented bool) {
	if s.last < 0 {
		return
	}
	if !indented {
		s.open = false
	}
	f := &s.out[s.last]
	if s.open && f.Module == "" && n-s.lastLine <= followWindow {
		if m := s.x.ex.module(line); m != "" {
			f.Module = m
			s.commands(s.last)
		}
	}
	if (!s.open && n-s.lastLine > commandGap) || len(s.recent) == 0 || !strings.HasPrefix(trimmed, "go ") {
		return
	}
	prev := strings.ToLower(strings.TrimSpace(s.recent[len(s.recent)-1]))
	if !strings.HasSuffix(prev, ":") ||
		!(strings.Contains(prev, "to add") || strings.Contains(prev, "to update it") || strings.HasSuffix(prev, "run:")) {
		return
	}
	m := &s.meta[s.last]
	if len(trimmed) > 200 || !s.x.ex.safeCommand(trimmed) || slices.Contains(m.captured, trimmed) {
		return
	}
	m.captured = append(m.captured, trimmed)
	s.commands(s.last)
}

func (s *scan) remember(line string) {
	if len(s.recent) == contextLines {
		copy(s.recent, s.recent[1:])
		s.recent = s.recent[:contextLines-1]
	}
	if len(line) > 1024 {
		line = line[:1024]
	}
	s.recent = append(s.recent, line)
}
