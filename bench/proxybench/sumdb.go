package main

import (
	"context"
	"crypto/rand"
	"fmt"
	"net/http"
	"os"
	"strings"

	"golang.org/x/mod/module"
	"golang.org/x/mod/sumdb"
	"golang.org/x/mod/sumdb/note"
)

// localSumDBName names the harness's own checksum database.
const localSumDBName = "sum.proxybench.test"

// localSumDB is a checksum database for the project's modules, signed with
// a key made for this run, so that modproxy can verify what it admits
// without leaving loopback. It records every module version of go.sum
// before anything is measured: its tree does not grow while modproxy reads
// it, like a real database's during one fill.
type localSumDB struct {
	Name     string
	Verifier string // NAME+HASH+KEY, as GOSUMDB and modproxy's --sumdb take it
	Handler  http.Handler
	Records  int
}

func newLocalSumDB(ctx context.Context, goSum []byte) (*localSumDB, error) {
	signer, verifier, err := note.GenerateKey(rand.Reader, localSumDBName)
	if err != nil {
		return nil, err
	}
	lines := map[module.Version][]byte{}
	var order []module.Version
	for line := range strings.SplitSeq(string(goSum), "\n") {
		f := strings.Fields(line)
		if len(f) != 3 {
			continue
		}
		m := module.Version{Path: f[0], Version: strings.TrimSuffix(f[1], "/go.mod")}
		if _, ok := lines[m]; !ok {
			order = append(order, m)
		}
		lines[m] = append(lines[m], line+"\n"...)
	}
	ts := sumdb.NewTestServer(signer, func(path, vers string) ([]byte, error) {
		if b, ok := lines[module.Version{Path: path, Version: vers}]; ok {
			return b, nil
		}
		return nil, fmt.Errorf("%s@%s is not in go.sum: %w", path, vers, os.ErrNotExist)
	})
	for _, m := range order {
		if _, err := ts.Lookup(ctx, m); err != nil {
			return nil, fmt.Errorf("checksum database: %v", err)
		}
	}
	return &localSumDB{Name: localSumDBName, Verifier: verifier, Handler: sumdb.NewServer(ts), Records: len(order)}, nil
}
