package explain

import (
	"fmt"
	"io"
	"strings"
)

const textWidth = 80

// WriteText writes findings for humans: one block per finding (title, line,
// the text, module, cause, fix, commands) followed by a one-line summary, or
// "no module download errors found" when fs is empty.
func WriteText(w io.Writer, fs []Finding) error {
	ew := &errWriter{w: w}
	if len(fs) == 0 {
		ew.printf("no module download errors found\n")
		return ew.err
	}
	total := 0
	for i, f := range fs {
		total += max(f.Count, 1)
		ew.printf("[%d] %s (%s)\n", i+1, f.Title, f.ID)
		ew.printf("    %-8s %s\n", fmt.Sprintf("line %d:", f.Line), f.Text)
		if f.Module != "" {
			ew.printf("    %-8s %s\n", "module:", f.Module)
		}
		if f.Count > 1 {
			ew.printf("    %-8s %d times\n", "seen:", f.Count)
		}
		ew.block("cause:", f.Cause)
		ew.block("fix:", f.Fix)
		if len(f.Commands) > 0 {
			ew.printf("    run:\n")
			for _, c := range f.Commands {
				ew.printf("        %s\n", c)
			}
		}
		ew.printf("\n")
	}
	ew.printf("%s\n", summary(fs, total))
	return ew.err
}

// summary is the last line of WriteText output.
func summary(fs []Finding, total int) string {
	var ids []string
	seen := map[string]bool{}
	for _, f := range fs {
		if !seen[f.ID] {
			seen[f.ID] = true
			ids = append(ids, f.ID)
		}
	}
	s := fmt.Sprintf("%d module download %s found", len(fs), plural(len(fs), "error", "errors"))
	if total > len(fs) {
		s += fmt.Sprintf(" (%d occurrences)", total)
	}
	return s + ": " + strings.Join(ids, ", ")
}

func plural(n int, one, many string) string {
	if n == 1 {
		return one
	}
	return many
}

type errWriter struct {
	w   io.Writer
	err error
}

func (ew *errWriter) printf(format string, args ...any) {
	if ew.err == nil {
		_, ew.err = fmt.Fprintf(ew.w, format, args...)
	}
}

// block writes a labelled paragraph wrapped at textWidth columns.
func (ew *errWriter) block(label, text string) {
	words := strings.Fields(text)
	if len(words) == 0 {
		return
	}
	prefix := fmt.Sprintf("    %-8s ", label)
	pad := strings.Repeat(" ", len(prefix))
	var b strings.Builder
	b.WriteString(prefix)
	col, first := len(prefix), true
	for _, w := range words {
		if !first && col+1+len(w) > textWidth {
			b.WriteString("\n")
			b.WriteString(pad)
			col, first = len(pad), true
		}
		if !first {
			b.WriteByte(' ')
			col++
		}
		b.WriteString(w)
		col += len(w)
		first = false
	}
	b.WriteByte('\n')
	ew.printf("%s", b.String())
}
