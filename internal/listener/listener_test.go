package listener

import (
	"bytes"
	"errors"
	"io"
	"net"
	"os"
	"path/filepath"
	"testing"
	"time"
)

func listen(t *testing.T, opts Options) net.Listener {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	l := New(ln, opts)
	t.Cleanup(func() { l.Close() })
	return l
}

func dial(t *testing.T, addr net.Addr) net.Conn {
	t.Helper()
	c, err := net.Dial("tcp", addr.String())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	return c
}

// TestMaxConns: with two connections open, Accept waits (OnFull is
// called) and accepts the third client once one of them closes.
func TestMaxConns(t *testing.T) {
	full := make(chan struct{}, 10)
	l := listen(t, Options{MaxConns: 2, OnFull: func() { full <- struct{}{} }})
	accepted := make(chan net.Conn, 3)
	go func() {
		for {
			c, err := l.Accept()
			if err != nil {
				close(accepted)
				return
			}
			accepted <- c
		}
	}()
	var server []net.Conn
	for range 3 {
		dial(t, l.Addr())
	}
	for range 2 {
		server = append(server, <-accepted)
	}
	select {
	case <-full:
	case <-time.After(10 * time.Second):
		t.Fatal("Accept did not reach the bound")
	}
	select {
	case c := <-accepted:
		t.Fatalf("a third connection was accepted while two were open: %v", c.RemoteAddr())
	default:
	}
	if err := server[0].Close(); err != nil {
		t.Fatal(err)
	}
	select {
	case c := <-accepted:
		c.Close()
	case <-time.After(10 * time.Second):
		t.Fatal("the third client was not accepted after a slot freed")
	}
	server[1].Close()
	server[0].Close() // a second Close frees nothing more
	if err := l.Close(); err != nil {
		t.Fatal(err)
	}
	for range accepted {
	}
}

// TestCloseEndsWait: closing a full listener ends a waiting Accept.
func TestCloseEndsWait(t *testing.T) {
	full := make(chan struct{}, 1)
	l := listen(t, Options{MaxConns: 1, OnFull: func() { full <- struct{}{} }})
	dial(t, l.Addr())
	c, err := l.Accept()
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	errc := make(chan error, 1)
	go func() {
		_, err := l.Accept()
		errc <- err
	}()
	<-full
	l.Close()
	select {
	case err := <-errc:
		if !errors.Is(err, net.ErrClosed) {
			t.Fatalf("Accept after Close: %v, want net.ErrClosed", err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("Accept still waits after Close")
	}
}

// TestSendTimeout: a write to a client that never reads fails with a
// timeout once the socket buffers are full.
func TestSendTimeout(t *testing.T) {
	l := listen(t, Options{SendTimeout: 50 * time.Millisecond})
	client := dial(t, l.Addr())
	_ = client // never read
	c, err := l.Accept()
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	buf := make([]byte, 1<<20)
	done := make(chan error, 1)
	go func() {
		for {
			if _, err := c.Write(buf); err != nil {
				done <- err
				return
			}
		}
	}()
	select {
	case err := <-done:
		var ne net.Error
		if !errors.As(err, &ne) || !ne.Timeout() {
			t.Fatalf("write error %v, want a timeout", err)
		}
	case <-time.After(30 * time.Second):
		t.Fatal("writes to a client that does not read never failed")
	}
}

// fakeConn records what reaches its ReadFrom and its write deadlines.
type fakeConn struct {
	net.Conn
	readers   []io.Reader
	deadlines int
	out       bytes.Buffer
}

func (f *fakeConn) SetWriteDeadline(time.Time) error { f.deadlines++; return nil }
func (f *fakeConn) ReadFrom(r io.Reader) (int64, error) {
	f.readers = append(f.readers, r)
	return io.Copy(&f.out, r)
}

// TestReadFromKeepsSendfile: a *io.LimitedReader around a file (what
// http.ServeContent hands to net/http) reaches the connection's ReadFrom
// as a *io.LimitedReader directly around the *os.File, in chunks with a
// write deadline each, and the outer reader's N is kept up to date.
func TestReadFromKeepsSendfile(t *testing.T) {
	data := bytes.Repeat([]byte("0123456789abcdef"), (2*SendChunk+1000)/16)
	p := filepath.Join(t.TempDir(), "f")
	if err := os.WriteFile(p, data, 0o644); err != nil {
		t.Fatal(err)
	}
	f, err := os.Open(p)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	fc := &fakeConn{}
	l := &limited{opts: Options{SendTimeout: time.Minute}}
	c := &conn{Conn: fc, l: l}
	want := int64(len(data) - 10)
	lr := &io.LimitedReader{R: f, N: want}
	n, err := c.ReadFrom(lr)
	if err != nil || n != want || lr.N != 0 {
		t.Fatalf("ReadFrom = %d, %v (N left %d); want %d, nil, 0", n, err, lr.N, want)
	}
	if !bytes.Equal(fc.out.Bytes(), data[:want]) {
		t.Fatal("bytes differ")
	}
	if len(fc.readers) != 3 || fc.deadlines != 3 {
		t.Fatalf("%d ReadFrom calls with %d deadlines, want 3 chunks each with its deadline", len(fc.readers), fc.deadlines)
	}
	for _, r := range fc.readers {
		inner, ok := r.(*io.LimitedReader)
		if !ok {
			t.Fatalf("ReadFrom got %T", r)
		}
		if _, ok := inner.R.(*os.File); !ok {
			t.Fatalf("the chunk wraps %T, not the *os.File (sendfile would not be used)", inner.R)
		}
	}

	// A reader of unknown length is chunked until its end.
	fc2 := &fakeConn{}
	c2 := &conn{Conn: fc2, l: l}
	n, err = c2.ReadFrom(bytes.NewReader(data))
	if err != nil || n != int64(len(data)) || !bytes.Equal(fc2.out.Bytes(), data) {
		t.Fatalf("ReadFrom(unlimited) = %d, %v", n, err)
	}
}

// TestConnKeepsCloseWrite: net/http needs CloseWrite to close gracefully.
func TestConnKeepsCloseWrite(t *testing.T) {
	l := listen(t, Options{MaxConns: 1})
	client := dial(t, l.Addr())
	c, err := l.Accept()
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	cw, ok := c.(interface{ CloseWrite() error })
	if !ok {
		t.Fatal("accepted connection has no CloseWrite")
	}
	if err := cw.CloseWrite(); err != nil {
		t.Fatal(err)
	}
	client.SetReadDeadline(time.Now().Add(10 * time.Second))
	if n, err := client.Read(make([]byte, 1)); n != 0 || err != io.EOF {
		t.Fatalf("client read after CloseWrite: %d, %v; want EOF", n, err)
	}
}
