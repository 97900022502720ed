package hosted

import (
	"context"
	"path/filepath"
	"testing"
	"time"

	"golang.org/x/mod/sumdb/tlog"
)

// blockingFiles is a directory log whose commits wait for release.
type blockingFiles struct {
	*dirFiles
	entered chan struct{}
	release chan struct{}
}

func (b *blockingFiles) commit(ctx context.Context, n int64, rec []byte, hashes []tlog.Hash, head []byte) error {
	b.entered <- struct{}{}
	<-b.release
	return b.dirFiles.commit(ctx, n, rec, hashes, head)
}

// A slow commit (a shared store that takes its time) must not block the
// readers of the log: a go command fetching a hosted version looks it up
// while another version is being published.
func TestAppendDoesNotBlockReaders(t *testing.T) {
	ctx := context.Background()
	dir := filepath.Join(t.TempDir(), "log")
	l, err := OpenLog(dir, true, "")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := l.Append(ctx, "corp.example.com/m", "v1.0.0", Entry{Zip: "h1:a=", Mod: "h1:b="}); err != nil {
		t.Fatal(err)
	}
	bf := &blockingFiles{dirFiles: l.files.(*dirFiles), entered: make(chan struct{}), release: make(chan struct{})}
	l.files = bf

	done := make(chan error, 1)
	go func() {
		_, err := l.Append(ctx, "corp.example.com/m", "v1.1.0", Entry{Zip: "h1:c=", Mod: "h1:d="})
		done <- err
	}()
	<-bf.entered // the append is now inside its commit

	read := make(chan Entry, 1)
	go func() {
		e, _ := l.Lookup("corp.example.com/m", "v1.0.0")
		_, _ = l.Head()
		read <- e
	}()
	select {
	case e := <-read:
		if e.Zip != "h1:a=" {
			t.Errorf("Lookup during a commit = %+v", e)
		}
	case <-time.After(20 * time.Second):
		close(bf.release)
		t.Fatal("Lookup and Head waited for an append's commit")
	}
	if _, ok := l.Lookup("corp.example.com/m", "v1.1.0"); ok {
		t.Error("a version is visible before its commit completed")
	}
	close(bf.release)
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	if e, ok := l.Lookup("corp.example.com/m", "v1.1.0"); !ok || e.Index != 1 {
		t.Errorf("after the commit: %+v, %v", e, ok)
	}
	if tree, _ := l.Head(); tree.N != 2 {
		t.Errorf("head size %d, want 2", tree.N)
	}
}
