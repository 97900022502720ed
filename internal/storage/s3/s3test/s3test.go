// Package s3test starts a real S3-compatible server (versitygw with its
// posix backend) on loopback for tests of code that uses the S3 store.
// The binary is looked up in PATH, GOBIN and GOPATH/bin, never installed
// by the tests (.ci/run installs it; by hand: scripts/s3server
// --install-only); without it the test is skipped, or fails under CI=true
// (testenv.Unavailable).
package s3test

import (
	"bytes"
	"context"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/minio/minio-go/v7"
	"github.com/minio/minio-go/v7/pkg/credentials"

	"github.com/modproxy/modproxy/internal/testenv"
)

// Credentials of the test server.
const (
	AccessKey = "modproxytestaccess"
	SecretKey = "modproxytestsecret0123456789"
)

// Server is a running S3-compatible server.
type Server struct {
	Endpoint string        // host:port, path-style, plain http
	Admin    *minio.Client // a client with the server's credentials
}

var seq atomic.Int64

// find returns the versitygw binary from PATH, GOBIN or GOPATH/bin.
func find() (string, error) {
	if p, err := exec.LookPath("versitygw"); err == nil {
		return p, nil
	}
	for _, v := range []string{"GOBIN", "GOPATH"} {
		out, err := exec.Command("go", "env", v).Output()
		dir := strings.TrimSpace(string(out))
		if err != nil || dir == "" {
			continue
		}
		if v == "GOPATH" {
			dir = filepath.Join(filepath.SplitList(dir)[0], "bin")
		}
		p := filepath.Join(dir, "versitygw")
		if st, err := os.Stat(p); err == nil && st.Mode().IsRegular() {
			return p, nil
		}
	}
	return "", fmt.Errorf("versitygw (an S3-compatible server) is not installed; install it with scripts/s3server --install-only")
}

// Start starts the server with a temp directory, stopped at cleanup.
// Without the binary it skips, or fails under CI=true.
func Start(t testing.TB) *Server {
	t.Helper()
	bin, err := find()
	if err != nil {
		testenv.Unavailable(t, "%v", err)
	}
	var lastErr error
	for range 3 { // a free port can be taken by someone else before the server binds it
		s, err := start(t, bin)
		if err == nil {
			return s
		}
		lastErr = err
	}
	t.Fatalf("starting %s: %v", bin, lastErr)
	return nil
}

func start(t testing.TB, bin string) (*Server, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, err
	}
	addr := l.Addr().String()
	l.Close()
	var logs bytes.Buffer
	cmd := exec.Command(bin, "--port", addr, "--quiet", "posix", t.TempDir())
	cmd.Env = append(os.Environ(), "ROOT_ACCESS_KEY="+AccessKey, "ROOT_SECRET_KEY="+SecretKey)
	cmd.Stdout, cmd.Stderr = &logs, &logs
	if err := cmd.Start(); err != nil {
		return nil, err
	}
	exited := make(chan struct{})
	go func() { cmd.Wait(); close(exited) }()
	stop := func() { cmd.Process.Kill(); <-exited }
	admin, err := minio.New(addr, &minio.Options{Creds: credentials.NewStaticV4(AccessKey, SecretKey, ""),
		BucketLookup: minio.BucketLookupPath, Region: "us-east-1", MaxRetries: 1})
	if err != nil {
		stop()
		return nil, err
	}
	deadline := time.Now().Add(15 * time.Second)
	for {
		ctx, cancel := context.WithTimeout(context.Background(), time.Second)
		_, err := admin.ListBuckets(ctx)
		cancel()
		if err == nil {
			break
		}
		select {
		case <-exited:
			return nil, fmt.Errorf("versitygw exited: %s", logs.String())
		default:
		}
		if time.Now().After(deadline) {
			stop()
			return nil, fmt.Errorf("versitygw not ready on %s: %v\n%s", addr, err, logs.String())
		}
		time.Sleep(50 * time.Millisecond)
	}
	t.Cleanup(stop)
	return &Server{Endpoint: addr, Admin: admin}, nil
}

// NewBucket creates an empty bucket and returns its name.
func (s *Server) NewBucket(t testing.TB) string {
	t.Helper()
	name := fmt.Sprintf("modproxy-%d-%d", time.Now().UnixNano()%1e9, seq.Add(1))
	if err := s.Admin.MakeBucket(context.Background(), name, minio.MakeBucketOptions{Region: "us-east-1"}); err != nil {
		t.Fatalf("MakeBucket(%s): %v", name, err)
	}
	return name
}
