package proxy_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	iofs "io/fs"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"golang.org/x/mod/sumdb"

	"github.com/modproxy/modproxy/internal/audit"
	"github.com/modproxy/modproxy/internal/cachepolicy"
	"github.com/modproxy/modproxy/internal/checksum"
	"github.com/modproxy/modproxy/internal/event"
	"github.com/modproxy/modproxy/internal/event/eventtest"
	"github.com/modproxy/modproxy/internal/proxy"
	"github.com/modproxy/modproxy/internal/quarantine"
	storagefs "github.com/modproxy/modproxy/internal/storage/fs"
	"github.com/modproxy/modproxy/internal/upstream"
	"github.com/modproxy/modproxy/internal/upstream/proxyclient"
	"github.com/modproxy/modproxy/internal/upstream/upstreamtest"
)

// fakeVerifier answers every verification with err and records the
// hashes it was asked about.
type fakeVerifier struct {
	err func(mod, version string, goMod bool, h1 string) error
	mu  sync.Mutex
	got []string // "mod@version zip|go.mod h1"
}

func (v *fakeVerifier) Verify(ctx context.Context, mod, version string, goMod bool, h1 string) error {
	file := "zip"
	if goMod {
		file = "go.mod"
	}
	v.mu.Lock()
	v.got = append(v.got, mod+"@"+version+" "+file+" "+h1)
	v.mu.Unlock()
	return v.err(mod, version, goMod, h1)
}

// admissionFixture is a service with a verifier, a quarantine and an
// audit log, in front of a fake upstream.
type admissionFixture struct {
	up         *upstreamtest.Server
	store      *storagefs.Store
	svc        *proxy.Service
	quarantine string
	auditPath  string
	events     *eventtest.Recorder
}

func newAdmissionFixture(t *testing.T, v proxy.Verifier) *admissionFixture {
	t.Helper()
	up := upstreamtest.New(t, []upstreamtest.Module{{Path: "example.com/a", Version: "v1.0.0",
		Files: map[string][]byte{"go.mod": []byte("module example.com/a\n\ngo 1.21\n"), "a.go": []byte("package a\n")}}},
		upstreamtest.WithoutSumDB())
	dir := t.TempDir()
	store, err := storagefs.New(filepath.Join(dir, "cache"))
	if err != nil {
		t.Fatal(err)
	}
	q, err := quarantine.New(filepath.Join(dir, "quarantine"), 0)
	if err != nil {
		t.Fatal(err)
	}
	auditPath := filepath.Join(dir, "audit.log")
	al, err := audit.Open(auditPath)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := al.Close(); err != nil {
			t.Error(err)
		}
	})
	sink := &eventtest.Recorder{}
	svc := newService(t, up, proxy.Options{Store: store, TempDir: store.TempDir(), Verifier: v, Quarantine: q, Audit: al, Events: sink})
	return &admissionFixture{up: up, store: store, svc: svc, quarantine: q.Path(), auditPath: auditPath, events: sink}
}

// newService returns a service configured by opts in front of up, with
// the default freshness policy.
func newService(t *testing.T, up *upstreamtest.Server, opts proxy.Options) *proxy.Service {
	t.Helper()
	client, err := proxyclient.New(up.URL(), proxyclient.Options{Timeout: 5 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	opts.Upstream = &upstream.Chain{Links: []upstream.Link{{Fetcher: client}}}
	opts.Policy = cachepolicy.Default()
	svc := proxy.New(opts)
	t.Cleanup(svc.Close)
	return svc
}

// quarantined returns the content of every file in the quarantine.
func (f *admissionFixture) quarantined(t *testing.T) [][]byte {
	t.Helper()
	ents, err := os.ReadDir(f.quarantine)
	if err != nil {
		t.Fatal(err)
	}
	var out [][]byte
	for _, e := range ents {
		b, err := os.ReadFile(filepath.Join(f.quarantine, e.Name()))
		if err != nil {
			t.Fatal(err)
		}
		out = append(out, b)
	}
	return out
}

func (f *admissionFixture) audited(t *testing.T) []audit.Event {
	t.Helper()
	evs, err := audit.Read(f.auditPath)
	if err != nil {
		t.Fatal(err)
	}
	return evs
}

// goSumHash returns the h1: hash go.sum records for the zip or go.mod.
func goSumHash(t *testing.T, up *upstreamtest.Server, mod, version string, goMod bool) string {
	t.Helper()
	want := version
	if goMod {
		want += "/go.mod"
	}
	for line := range strings.SplitSeq(up.GoSum(mod, version), "\n") {
		if f := strings.Fields(line); len(f) == 3 && f[1] == want {
			return f[2]
		}
	}
	t.Fatalf("no go.sum line for %s %s", mod, want)
	return ""
}

// TestAdmissionRejects: content the verifier rejects (hash mismatch,
// unknown to the database, database misbehaving) is never stored, not even
// its recorded hash; it is quarantined byte for byte and audited with the
// hashes, and the caller gets the verifier's error.
func TestAdmissionRejects(t *testing.T) {
	const mod, version = "example.com/a", "v1.0.0"
	const dbWant = "h1:AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA="
	for _, tc := range []struct {
		name string
		err  error
	}{
		{"mismatch", &checksum.MismatchError{Module: mod, Version: version, Got: "h1:upstream=", Want: dbWant, DB: "sum.test"}},
		{"unknown to the database", &checksum.LookupError{Module: mod, Version: version, DB: "sum.test", NotFound: true, Err: iofs.ErrNotExist}},
		{"database security error", &checksum.LookupError{Module: mod, Version: version, DB: "sum.test", Err: fmt.Errorf("forked tree: %w", sumdb.ErrSecurity)}},
	} {
		for _, file := range []string{"zip", "mod"} {
			t.Run(tc.name+"/"+file, func(t *testing.T) {
				v := &fakeVerifier{err: func(string, string, bool, string) error { return tc.err }}
				f := newAdmissionFixture(t, v)
				key := mod + "/@v/" + version + "." + file
				content := f.up.ZipBytes(mod, version)
				if file == "mod" {
					content = f.up.ModBytes(mod, version)
				}
				wantH1 := goSumHash(t, f.up, mod, version, file == "mod")

				res, err := f.svc.Get(context.Background(), mustParse(t, key))
				if err == nil {
					res.Close()
					t.Fatal("Get served content the verifier rejected")
				}
				if !errors.Is(err, tc.err) {
					t.Errorf("Get = %v, want the verifier's error %v", err, tc.err)
				}
				if len(v.got) != 1 || !strings.HasSuffix(v.got[0], " "+wantH1) {
					t.Fatalf("verifier asked %q, want one question about %s", v.got, wantH1)
				}

				// Nothing stored: neither the object nor its recorded hash.
				for _, k := range []string{key, key + ".h1"} {
					if _, err := f.store.Stat(context.Background(), k); !errors.Is(err, iofs.ErrNotExist) {
						t.Errorf("Stat(%s) = %v, want fs.ErrNotExist (rejected content stored)", k, err)
					}
				}

				// Quarantined byte for byte.
				q := f.quarantined(t)
				if len(q) != 1 || !bytes.Equal(q[0], content) {
					t.Errorf("quarantine holds %d files, want exactly the rejected %d bytes", len(q), len(content))
				}

				// Audited, with the hash the content has.
				var found []audit.Event
				for _, e := range f.audited(t) {
					if e.Target == mod+"@"+version {
						found = append(found, e)
					}
				}
				if len(found) != 1 {
					t.Fatalf("audit events for %s@%s: %+v, want one", mod, version, found)
				}
				e := found[0]
				if e.Actor != "verifier" || e.Action != "quarantine" || e.Bytes != int64(len(content)) || e.Hashes["got"] != wantH1 {
					t.Errorf("audit event %+v, want actor verifier, action quarantine, %d bytes, got %s", e, len(content), wantH1)
				}
				var me *checksum.MismatchError
				if errors.As(tc.err, &me) && e.Hashes["want"] != dbWant {
					t.Errorf("audit event hashes %v, want the database's %s", e.Hashes, dbWant)
				}
				// A mismatch, and only a mismatch, is an event too.
				got := f.events.Events()
				switch {
				case me == nil && len(got) != 0:
					t.Errorf("events %+v, want none for a rejection that is no mismatch", got)
				case me != nil && (len(got) != 1 || got[0].Type != event.Mismatch || got[0].Module != mod || got[0].Version != version || got[0].Upstream == ""):
					t.Errorf("events %+v, want one checksum_mismatch for %s@%s with its upstream", got, mod, version)
				}

				// The next request asks again (nothing was remembered as good).
				if res, err := f.svc.Get(context.Background(), mustParse(t, key)); err == nil {
					res.Close()
					t.Fatal("second Get served rejected content")
				}
				if n := f.up.Requests(key); n != 2 {
					t.Errorf("upstream requests for %s = %d, want 2", key, n)
				}
			})
		}
	}
}

// TestAdmissionUnavailableDatabase: a verification that could not be
// completed fails the request without storing, quarantining or auditing
// anything (the content may be fine; a later request verifies again).
func TestAdmissionUnavailableDatabase(t *testing.T) {
	unreachable := &checksum.LookupError{Module: "example.com/a", Version: "v1.0.0", DB: "sum.test", Err: errors.New("connection refused")}
	f := newAdmissionFixture(t, &fakeVerifier{err: func(string, string, bool, string) error { return unreachable }})
	const key = "example.com/a/@v/v1.0.0.zip"
	if res, err := f.svc.Get(context.Background(), mustParse(t, key)); !errors.Is(err, unreachable) {
		if err == nil {
			res.Close()
		}
		t.Fatalf("Get = %v, want %v", err, unreachable)
	}
	for _, k := range []string{key, key + ".h1"} {
		if _, err := f.store.Stat(context.Background(), k); !errors.Is(err, iofs.ErrNotExist) {
			t.Errorf("Stat(%s) = %v, want fs.ErrNotExist", k, err)
		}
	}
	if q := f.quarantined(t); len(q) != 0 {
		t.Errorf("quarantine holds %d files, want none", len(q))
	}
	if _, err := os.Stat(f.auditPath); err == nil {
		if evs := f.audited(t); len(evs) != 0 {
			t.Errorf("audit events %+v, want none", evs)
		}
	}
}

// TestAdmissionAccepts: verified and private content is stored with its
// recorded hash, and nothing is quarantined.
func TestAdmissionAccepts(t *testing.T) {
	for name, verr := range map[string]error{"verified": nil, "private": checksum.ErrPrivate} {
		t.Run(name, func(t *testing.T) {
			f := newAdmissionFixture(t, &fakeVerifier{err: func(string, string, bool, string) error { return verr }})
			for _, file := range []string{"zip", "mod"} {
				key := "example.com/a/@v/v1.0.0." + file
				res, err := f.svc.Get(context.Background(), mustParse(t, key))
				if err != nil {
					t.Fatalf("Get(%s): %v", key, err)
				}
				want := goSumHash(t, f.up, "example.com/a", "v1.0.0", file == "mod")
				if res.H1 != want {
					t.Errorf("Get(%s).H1 = %q, want %q", key, res.H1, want)
				}
				if err := res.Close(); err != nil {
					t.Fatal(err)
				}
				o, err := f.store.Open(context.Background(), key+".h1")
				if err != nil {
					t.Fatalf("recorded hash of %s: %v", key, err)
				}
				if err := o.Close(); err != nil {
					t.Fatal(err)
				}
			}
			if q := f.quarantined(t); len(q) != 0 {
				t.Errorf("quarantine holds %d files, want none", len(q))
			}
		})
	}
}
