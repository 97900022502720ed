package app

import (
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"net"
	"os"
	"path/filepath"
	"time"

	"github.com/modproxy/modproxy/internal/atomicfile"
)

// AdminState is what a serving process records in
// CACHE_DIR/state/admin.json while it runs with an admin listener: how to
// reach its admin API. While a server runs, it holds the cache
// directory's metadata index, so the commands that need the index (gc,
// index) ask that server instead (see RunningAdmin). It holds no secret.
type AdminState struct {
	// URL is the admin API's base URL, "http://HOST:PORT"; a listener on
	// every interface is recorded with a loopback address.
	URL     string    `json:"url"`
	PID     int       `json:"pid"`
	Started time.Time `json:"started"`
}

func adminStatePath(cacheDir string) string {
	return filepath.Join(cacheDir, "state", "admin.json")
}

// RunningAdmin returns the admin API recorded in cacheDir by the server
// that last started on it with an admin listener; ok is false when none is
// recorded. The server may have stopped since without removing the record
// (killed): a caller checks that the URL answers, and for cacheDir.
func RunningAdmin(cacheDir string) (st AdminState, ok bool, err error) {
	path := adminStatePath(cacheDir)
	data, err := atomicfile.Read(path, 64<<10)
	if errors.Is(err, fs.ErrNotExist) {
		return AdminState{}, false, nil
	}
	if err != nil {
		return AdminState{}, false, err
	}
	if err := json.Unmarshal(data, &st); err != nil || st.URL == "" {
		return AdminState{}, false, fmt.Errorf("%s: not an admin state record", path)
	}
	return st, true, nil
}

// adminURL is the URL at which a local client reaches a listener bound to
// addr: a wildcard address becomes the loopback address of its family.
func adminURL(addr net.Addr) string {
	host, port, err := net.SplitHostPort(addr.String())
	if err != nil {
		return "http://" + addr.String()
	}
	if ip := net.ParseIP(host); ip != nil && ip.IsUnspecified() {
		host = "127.0.0.1"
		if ip.To4() == nil {
			host = "::1"
		}
	}
	return "http://" + net.JoinHostPort(host, port)
}

// recordAdmin records the admin listener bound to addr (nil: no admin
// listener, and a record left by an earlier run is removed). A failure is
// logged: the server runs all the same, only the CLI cannot find it.
func (s *Server) recordAdmin(addr net.Addr) {
	path := adminStatePath(s.cfg.CacheDir)
	if addr == nil {
		s.forgetAdmin()
		return
	}
	data, err := json.Marshal(AdminState{URL: adminURL(addr), PID: os.Getpid(), Started: time.Now().UTC()})
	if err == nil {
		err = atomicfile.Write(path, append(data, '\n'), 0o644)
	}
	if err != nil {
		s.log.Warn("cannot record the admin address for the CLI", "path", path, "err", err)
	}
}

// forgetAdmin removes the record of the admin listener.
func (s *Server) forgetAdmin() {
	path := adminStatePath(s.cfg.CacheDir)
	if err := os.Remove(path); err != nil && !errors.Is(err, fs.ErrNotExist) {
		s.log.Warn("cannot remove the admin address record", "path", path, "err", err)
	}
}
