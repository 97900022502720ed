package proxy

import (
	"bytes"
	"encoding/json"
	"fmt"
	"os"
	"strings"
	"time"
	"unicode/utf8"

	"golang.org/x/mod/modfile"
	"golang.org/x/mod/semver"
	"golang.org/x/mod/sumdb/dirhash"
	"golang.org/x/mod/sumdb/tlog"
	modzip "golang.org/x/mod/zip"

	"github.com/modproxy/modproxy/internal/artifact"
)

// InvalidResponseError is an upstream answer that failed validation. It is
// never stored; the client gets a 502.
type InvalidResponseError struct {
	Key    string
	Source string
	Reason string
}

func (e *InvalidResponseError) Error() string {
	return fmt.Sprintf("upstream %s answered %s with invalid content: %s", e.Source, e.Key, e.Reason)
}

// infoJSON is the .info / @latest document.
type infoJSON struct {
	Version string
	Time    time.Time
}

// validateSmall checks a non-zip answer before it is admitted.
func validateSmall(req artifact.Request, data []byte) error {
	switch req.Kind {
	case artifact.Info, artifact.Latest, artifact.Query:
		var info infoJSON
		if err := json.Unmarshal(data, &info); err != nil {
			return fmt.Errorf("not a JSON version info: %v", err)
		}
		if !artifact.IsCanonical(info.Version) {
			return fmt.Errorf("info names %q, not a canonical version", info.Version)
		}
		if req.Kind == artifact.Info && info.Version != req.Version {
			return fmt.Errorf("proxy returned info for version %s instead of requested version %s", info.Version, req.Version)
		}
	case artifact.Mod:
		if _, err := modfile.ParseLax("go.mod", data, nil); err != nil {
			return fmt.Errorf("go.mod does not parse: %v", err)
		}
	case artifact.List:
		if !utf8.Valid(data) {
			return fmt.Errorf("version list is not UTF-8 text")
		}
		for line := range strings.SplitSeq(string(data), "\n") {
			f := strings.Fields(line)
			if len(f) > 0 && !semver.IsValid(f[0]) {
				return fmt.Errorf("version list has invalid version %q", upstreamSanitize(f[0]))
			}
		}
	case artifact.SumDB:
		if strings.HasPrefix(req.SumDBPath, "tile/") {
			t, err := tlog.ParseTilePath(req.SumDBPath)
			if err != nil {
				return err
			}
			if t.L >= 0 && len(data) != t.W*tlog.HashSize {
				return fmt.Errorf("tile of width %d has %d bytes, want %d", t.W, len(data), t.W*tlog.HashSize)
			}
		}
		if len(bytes.TrimSpace(data)) == 0 && !strings.HasPrefix(req.SumDBPath, "tile/") {
			return fmt.Errorf("empty answer")
		}
	}
	return nil
}

// validateZip checks a spooled zip with golang.org/x/mod/zip.CheckZip and
// reads every file in it (which verifies each entry's CRC-32), returning
// its h1: hash.
func validateZip(req artifact.Request, f *os.File) (string, error) {
	if _, err := modzip.CheckZip(req.ModuleVersion(), f.Name()); err != nil {
		return "", fmt.Errorf("module zip: %v", err)
	}
	h1, err := dirhash.HashZip(f.Name(), dirhash.Hash1)
	if err != nil {
		return "", fmt.Errorf("module zip: %v", err)
	}
	return h1, nil
}

func upstreamSanitize(s string) string {
	if len(s) > 80 {
		s = s[:80] + "..."
	}
	return fmt.Sprintf("%q", s)
}
