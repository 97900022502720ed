package bundle_test

import (
	"archive/tar"
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"io"
	"slices"
	"strings"
	"testing"

	"github.com/modproxy/modproxy/internal/bundle"
)

// rewriteArchive copies the bundle data, passing each member through fn
// (which returns the new body, and whether it changed it; a nil body
// drops the member).
func rewriteArchive(t *testing.T, data []byte, fn func(name string, body []byte) ([]byte, bool)) []byte {
	t.Helper()
	tr := tar.NewReader(bytes.NewReader(data))
	var out bytes.Buffer
	tw := tar.NewWriter(&out)
	for {
		hdr, err := tr.Next()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			t.Fatal(err)
		}
		body, err := io.ReadAll(tr)
		if err != nil {
			t.Fatal(err)
		}
		body, _ = fn(hdr.Name, body)
		if body == nil {
			continue
		}
		hdr.Size = int64(len(body))
		if err := tw.WriteHeader(hdr); err != nil {
			t.Fatal(err)
		}
		if _, err := tw.Write(body); err != nil {
			t.Fatal(err)
		}
	}
	if err := tw.Close(); err != nil {
		t.Fatal(err)
	}
	return out.Bytes()
}

// editMembers rewrites the bundle with the members edit changes (nil
// drops one) and a manifest that matches them: a tamperer who also
// rewrites the manifest.
func editMembers(t *testing.T, data []byte, edit func(key string, body []byte) []byte) []byte {
	t.Helper()
	changed := map[string][]byte{}
	out := rewriteArchive(t, data, func(name string, body []byte) ([]byte, bool) {
		key, ok := strings.CutPrefix(name, bundle.ObjectPrefix)
		if !ok {
			return body, false
		}
		nb := edit(key, body)
		if nb == nil || !bytes.Equal(nb, body) {
			changed[key] = nb
		}
		return nb, true
	})
	return rewriteArchive(t, out, func(name string, body []byte) ([]byte, bool) {
		if name != bundle.ManifestName {
			return body, false
		}
		var m bundle.Manifest
		if err := json.Unmarshal(body, &m); err != nil {
			t.Fatal(err)
		}
		m.Members = slices.DeleteFunc(m.Members, func(mem bundle.Member) bool {
			nb, ok := changed[mem.Key]
			return ok && nb == nil
		})
		for i, mem := range m.Members {
			if nb, ok := changed[mem.Key]; ok {
				s := sha256.Sum256(nb)
				m.Members[i].Size, m.Members[i].SHA256 = int64(len(nb)), hex.EncodeToString(s[:])
			}
		}
		b, err := json.Marshal(&m)
		if err != nil {
			t.Fatal(err)
		}
		return b, true
	})
}

func rewriteManifestToo(t *testing.T, data []byte, key string) []byte {
	return editMembers(t, data, func(k string, b []byte) []byte {
		if k == key {
			b = slices.Clone(b)
			b[len(b)/2] ^= 1
		}
		return b
	})
}

func dropTile(t *testing.T, data []byte, db string) []byte {
	dropped := false
	return editMembers(t, data, func(k string, b []byte) []byte {
		if !dropped && strings.HasPrefix(k, "sumdb/"+db+"/tile/") {
			dropped = true
			return nil
		}
		return b
	})
}

func cutManifest(t *testing.T, data []byte) []byte {
	return rewriteArchive(t, data, func(name string, body []byte) ([]byte, bool) {
		if name == bundle.ManifestName {
			return nil, true
		}
		return body, false
	})
}

// addMember inserts a member (before the manifest) and lists it in the
// manifest: a tamperer adding an object.
func addMember(t *testing.T, data []byte, key string, body []byte) []byte {
	t.Helper()
	var out bytes.Buffer
	tw := tar.NewWriter(&out)
	tr := tar.NewReader(bytes.NewReader(data))
	for {
		hdr, err := tr.Next()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			t.Fatal(err)
		}
		b, err := io.ReadAll(tr)
		if err != nil {
			t.Fatal(err)
		}
		if hdr.Name == bundle.ManifestName {
			var m bundle.Manifest
			if err := json.Unmarshal(b, &m); err != nil {
				t.Fatal(err)
			}
			s := sha256.Sum256(body)
			m.Members = append(m.Members, bundle.Member{Key: key, Size: int64(len(body)), SHA256: hex.EncodeToString(s[:])})
			slices.SortFunc(m.Members, func(a, b bundle.Member) int { return strings.Compare(a.Key, b.Key) })
			if b, err = json.Marshal(&m); err != nil {
				t.Fatal(err)
			}
			add := &tar.Header{Typeflag: tar.TypeReg, Name: bundle.ObjectPrefix + key, Size: int64(len(body)), Mode: 0o644}
			if err := tw.WriteHeader(add); err != nil {
				t.Fatal(err)
			}
			if _, err := tw.Write(body); err != nil {
				t.Fatal(err)
			}
		}
		hdr.Size = int64(len(b))
		if err := tw.WriteHeader(hdr); err != nil {
			t.Fatal(err)
		}
		if _, err := tw.Write(b); err != nil {
			t.Fatal(err)
		}
	}
	if err := tw.Close(); err != nil {
		t.Fatal(err)
	}
	return out.Bytes()
}
