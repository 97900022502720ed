package hosted_test

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"slices"
	"sync"
	"testing"

	"golang.org/x/mod/sumdb"

	"github.com/modproxy/modproxy/internal/hosted"
)

// clientOps is a sumdb client's view of a log served on loopback.
type clientOps struct {
	t      *testing.T
	url    string
	key    string
	mu     sync.Mutex
	config map[string][]byte
}

func (c *clientOps) ReadRemote(path string) ([]byte, error) {
	resp, err := http.Get(c.url + path)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		return nil, err
	}
	if resp.StatusCode != 200 {
		return nil, errors.New(resp.Status + ": " + string(b))
	}
	return b, nil
}

func (c *clientOps) ReadConfig(file string) ([]byte, error) {
	if file == "key" {
		return []byte(c.key), nil
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.config[file], nil
}

func (c *clientOps) WriteConfig(file string, old, new []byte) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	if string(c.config[file]) != string(old) {
		return sumdb.ErrWriteConflict
	}
	c.config[file] = new
	return nil
}

func (c *clientOps) ReadCache(string) ([]byte, error) { return nil, errors.New("no cache") }
func (c *clientOps) WriteCache(string, []byte)        {}
func (c *clientOps) Log(string)                       {}
func (c *clientOps) SecurityError(msg string)         { c.t.Errorf("security error: %s", msg) }

// TestLogServedToSumDBClients: x/mod's own checksum database client,
// given the log's verifier key, looks up hosted versions in the served
// log and follows it as it grows (proving consistency).
func TestLogServedToSumDBClients(t *testing.T) {
	l, err := hosted.OpenLog(filepath.Join(t.TempDir(), "log"), true, "")
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(l.Handler())
	defer srv.Close()
	ops := &clientOps{t: t, url: srv.URL, key: l.VerifierKey(), config: map[string][]byte{}}
	for i := range byte(3) {
		if _, err := l.Append(context.Background(), "corp.example.com/m", "v1.0."+string('0'+i), entry(i)); err != nil {
			t.Fatal(err)
		}
	}
	lookup := func(version string, i byte) {
		t.Helper()
		c := sumdb.NewClient(ops) // a fresh client starts from the persisted head, as go commands do
		for _, q := range []struct{ vers, h1 string }{{version, entry(i).Zip}, {version + "/go.mod", entry(i).Mod}} {
			lines, err := c.Lookup("corp.example.com/m", q.vers)
			if err != nil {
				t.Fatal(err)
			}
			if want := []string{"corp.example.com/m " + q.vers + " " + q.h1}; !slices.Equal(lines, want) {
				t.Fatalf("lookup %s = %q, want %q", q.vers, lines, want)
			}
		}
	}
	lookup("v1.0.1", 1)
	for i := byte(3); i < 40; i++ { // past a full tile of 2^sumdb's height
		if _, err := l.Append(context.Background(), "corp.example.com/m", fmt.Sprintf("v1.1.%d", i), entry(i)); err != nil {
			t.Fatal(err)
		}
	}
	lookup("v1.0.2", 2)
	if _, err := sumdb.NewClient(ops).Lookup("corp.example.com/m", "v9.9.9"); err == nil {
		t.Fatal("lookup of an unknown version succeeded")
	}
}
