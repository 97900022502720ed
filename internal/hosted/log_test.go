package hosted_test

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"testing"

	"golang.org/x/mod/sumdb/note"
	"golang.org/x/mod/sumdb/tlog"

	"github.com/modproxy/modproxy/internal/hosted"
)

func entry(n byte) hosted.Entry {
	return hosted.Entry{Zip: "h1:zip" + string('a'+n) + "=", Mod: "h1:mod" + string('a'+n) + "="}
}

func TestLogAppendReopen(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "log")
	l, err := hosted.OpenLog(dir, true, "")
	if err != nil {
		t.Fatal(err)
	}
	fi, err := os.Stat(filepath.Join(dir, "key"))
	if err != nil || fi.Mode().Perm() != 0o600 {
		t.Fatalf("private key: %v %v", fi, err)
	}
	for i := range byte(5) {
		if n, err := l.Append(context.Background(), "corp.example.com/m", "v1.0."+string('0'+i), entry(i)); err != nil || n != int64(i) {
			t.Fatalf("append %d: %d %v", i, n, err)
		}
	}
	tree, head := l.Head()
	// The head is a note signed by the log's key over a tlog tree.
	v, err := note.NewVerifier(l.VerifierKey())
	if err != nil {
		t.Fatal(err)
	}
	n, err := note.Open(head, note.VerifierList(v))
	if err != nil {
		t.Fatal(err)
	}
	if pt, err := tlog.ParseTree([]byte(n.Text)); err != nil || pt != tree || tree.N != 5 {
		t.Fatalf("head %+v, tree %+v, %v", pt, tree, err)
	}
	// A killed append leaves bytes past the head: readers ignore them, the
	// next writer truncates them.
	for _, name := range []string{"records", "offsets", "hashes"} {
		f, err := os.OpenFile(filepath.Join(dir, name), os.O_WRONLY|os.O_APPEND, 0)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := f.Write([]byte("torn tail of a killed append")); err != nil {
			t.Fatal(err)
		}
		f.Close()
	}
	ro, err := hosted.OpenLog(dir, false, "")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := ro.Check(context.Background()); err != nil {
		t.Fatalf("read-only check with a torn tail: %v", err)
	}
	l2, err := hosted.OpenLog(dir, true, "")
	if err != nil {
		t.Fatal(err)
	}
	if e, ok := l2.Lookup("corp.example.com/m", "v1.0.3"); !ok || e.Index != 3 || e.Zip != entry(3).Zip {
		t.Fatalf("lookup after reopen: %+v %v", e, ok)
	}
	if n, err := l2.Append(context.Background(), "corp.example.com/m", "v1.1.0", entry(9)); err != nil || n != 5 {
		t.Fatalf("append after reopen: %d %v", n, err)
	}
	if tree, err := l2.Check(context.Background()); err != nil || tree.N != 6 {
		t.Fatalf("check: %+v %v", tree, err)
	}
}

func TestLogTamperDetected(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "log")
	l, err := hosted.OpenLog(dir, true, "")
	if err != nil {
		t.Fatal(err)
	}
	for i := range byte(3) {
		if _, err := l.Append(context.Background(), "corp.example.com/m", "v1.0."+string('0'+i), entry(i)); err != nil {
			t.Fatal(err)
		}
	}
	recs := filepath.Join(dir, "records")
	b, err := os.ReadFile(recs)
	if err != nil {
		t.Fatal(err)
	}
	good := append([]byte(nil), b...)
	b[len(b)-3] ^= 1 // inside the last record's go.mod hash
	if err := os.WriteFile(recs, b, 0o644); err != nil {
		t.Fatal(err)
	}
	ro, err := hosted.OpenLog(dir, false, "")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := ro.Check(context.Background()); !errors.Is(err, hosted.ErrTampered) {
		t.Fatalf("check of a changed record: %v, want ErrTampered", err)
	}
	if err := os.WriteFile(recs, good, 0o644); err != nil {
		t.Fatal(err)
	}
	head := filepath.Join(dir, "head")
	h, err := os.ReadFile(head)
	if err != nil {
		t.Fatal(err)
	}
	h[0] = '9' // the tree head's first line: another log name
	if err := os.WriteFile(head, h, 0o644); err != nil {
		t.Fatal(err)
	}
	if _, err := hosted.OpenLog(dir, false, ""); err == nil {
		t.Fatal("a head whose signature does not verify was accepted")
	}
}
