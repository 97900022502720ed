package upstreamtest

import (
	"crypto/rand"
	"fmt"
	"io/fs"
	"net/http"
	"net/http/httptest"
	"strings"

	"golang.org/x/mod/sumdb"
	"golang.org/x/mod/sumdb/note"
)

// sumDB is the checksum database a Server serves under /sumdb/NAME/.
type sumDB struct {
	name    string
	skey    string       // signer key
	vkey    string       // verifier key, a GOSUMDB value "NAME+hash+key"
	handler http.Handler // serves /lookup/, /latest and /tile/
}

// newSumDB creates a checksum database with a fresh Ed25519 key whose
// records come from gosum.
func newSumDB(name string, keys [2]string, gosum func(path, vers string) ([]byte, error)) (*sumDB, error) {
	if strings.Contains(name, "/") {
		return nil, fmt.Errorf("checksum database name %q contains a slash", name)
	}
	skey, vkey, err := keys[0], keys[1], error(nil)
	if skey == "" {
		skey, vkey, err = note.GenerateKey(rand.Reader, name)
	}
	if err == nil {
		_, err = note.NewVerifier(vkey) // validates the name
	}
	if err != nil {
		return nil, fmt.Errorf("checksum database name %q: %w", name, err)
	}
	return &sumDB{
		name:    name,
		skey:    skey,
		vkey:    vkey,
		handler: sumdb.NewServer(sumdb.NewTestServer(skey, gosum)),
	}, nil
}

// SumDB returns the name of the checksum database served at
// URL()+"/sumdb/"+name+"/" and its verifier key "NAME+hash+key", which is a
// GOSUMDB value: with GOPROXY=URL() the go command finds the database through
// /sumdb/NAME/supported and verifies every download against it. The database
// records the honest go.sum lines ([Server.GoSum]) of a version when it is
// first looked up; unknown versions answer 404. SumDB returns "", "" for a
// Server made WithoutSumDB.
func (s *Server) SumDB() (name, verifierKey string) {
	if s.sum == nil {
		return "", ""
	}
	return s.sum.name, s.sum.vkey
}

// goSumRecord is the checksum database's source of records: the honest
// go.sum lines of a served version. An unknown version is an fs.ErrNotExist
// (wrapped in *fs.PathError, which os.IsNotExist recognizes), so the
// lookup answers 404.
func (s *Server) goSumRecord(path, vers string) ([]byte, error) {
	v := s.lookup(path, vers)
	if v == nil {
		return nil, &fs.PathError{Op: "lookup", Path: path + "@" + vers, Err: fs.ErrNotExist}
	}
	return []byte(v.gosum), nil
}

// serveSumDB renders the answer for "sumdb/"+rest.
func (s *Server) serveSumDB(r *http.Request, rest string) response {
	name, sub, _ := strings.Cut(rest, "/")
	if s.sum == nil || name != s.sum.name {
		return notFound("unknown checksum database " + name)
	}
	if sub == "supported" {
		return okResponse(contentText, nil)
	}
	r2 := new(http.Request)
	*r2 = *r
	u := *r.URL
	u.Path, u.RawPath = "/"+sub, ""
	r2.URL = &u
	rec := httptest.NewRecorder()
	s.sum.handler.ServeHTTP(rec, r2)
	return response{code: rec.Code, header: rec.Header().Clone(), body: rec.Body.Bytes()}
}

// SumDBKeys returns the signer and verifier keys of the checksum database,
// so that a test can start another Server signing with the same key (a
// forked or rolled-back database) with WithSumDBKeys.
func (s *Server) SumDBKeys() (signer, verifier string) {
	if s.sum == nil {
		return "", ""
	}
	return s.sum.skey, s.sum.vkey
}
