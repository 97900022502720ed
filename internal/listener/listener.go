// Package listener bounds what clients can hold of a server's listener:
// at most MaxConns connections at once, and writes to a client that must
// make progress (a client that stops reading is cut off after
// SendTimeout, one that keeps reading, however slowly, never is). The
// read side (request headers, bodies, idle keep-alive connections) is
// bounded by net/http's own timeouts, which the caller sets.
//
// Why not golang.org/x/net/netutil.LimitListener: its connections hide
// the *net.TCPConn's ReadFrom and CloseWrite, so net/http would copy zips
// through user space instead of sendfile, and close connections with
// unread request bytes by reset (which can destroy a response the client
// has not read yet). The connections of this package keep both.
//
// It is a leaf: it imports no modproxy package.
package listener

import (
	"io"
	"net"
	"sync"
	"time"
)

// Options configures a listener. Zero values disable each bound.
type Options struct {
	// MaxConns bounds the connections open at once. Accept waits while
	// MaxConns are open: further clients wait in the kernel's accept
	// queue (they are not refused) until one closes.
	MaxConns int
	// SendTimeout bounds each write to a client: a write that cannot hand
	// its bytes to the kernel within SendTimeout (the client stopped
	// reading, its window stays closed) fails and net/http closes the
	// connection. Bodies sent with sendfile go in chunks of SendChunk
	// bytes, each with its own SendTimeout, so a client must take at
	// least SendChunk bytes per SendTimeout.
	SendTimeout time.Duration
	// OnFull, when set, is called (from Accept) each time the bound is
	// reached, before Accept starts to wait. It must not block.
	OnFull func()
}

// SendChunk is how much of a sendfile body one write deadline covers.
const SendChunk = 256 << 10

// New wraps ln with the bounds of opts. Closing the returned listener
// closes ln and ends a wait in Accept.
func New(ln net.Listener, opts Options) net.Listener {
	l := &limited{Listener: ln, opts: opts, done: make(chan struct{})}
	if opts.MaxConns > 0 {
		l.sem = make(chan struct{}, opts.MaxConns)
	}
	return l
}

type limited struct {
	net.Listener
	opts      Options
	sem       chan struct{} // nil: no bound
	done      chan struct{} // closed by Close
	closeOnce sync.Once
}

func (l *limited) Accept() (net.Conn, error) {
	if l.sem != nil {
		select {
		case l.sem <- struct{}{}:
		default:
			if l.opts.OnFull != nil {
				l.opts.OnFull()
			}
			select {
			case l.sem <- struct{}{}:
			case <-l.done:
				return nil, net.ErrClosed
			}
		}
	}
	c, err := l.Listener.Accept()
	if err != nil {
		l.release()
		return nil, err
	}
	return &conn{Conn: c, l: l}, nil
}

func (l *limited) release() {
	if l.sem != nil {
		<-l.sem
	}
}

func (l *limited) Close() error {
	err := l.Listener.Close()
	l.closeOnce.Do(func() { close(l.done) })
	return err
}

// conn is an accepted connection: it frees its slot when closed and puts
// a deadline on every write.
type conn struct {
	net.Conn
	l         *limited
	closeOnce sync.Once
}

func (c *conn) Close() error {
	err := c.Conn.Close()
	c.closeOnce.Do(func() {
		c.l.release()
	})
	return err
}

// arm gives the next write SendTimeout to complete.
func (c *conn) arm() {
	if d := c.l.opts.SendTimeout; d > 0 {
		_ = c.Conn.SetWriteDeadline(time.Now().Add(d))
	}
}

func (c *conn) Write(p []byte) (int, error) {
	c.arm()
	return c.Conn.Write(p)
}

// ReadFrom keeps the underlying connection's ReadFrom (sendfile, splice)
// reachable for net/http, in chunks of SendChunk bytes with a write
// deadline each when SendTimeout is set.
func (c *conn) ReadFrom(r io.Reader) (int64, error) {
	rf, ok := c.Conn.(io.ReaderFrom)
	if !ok {
		return io.Copy(writerOnly{c}, r)
	}
	if c.l.opts.SendTimeout <= 0 {
		return rf.ReadFrom(r)
	}
	// Chunk the innermost reader, so that a *io.LimitedReader around an
	// *os.File (what http.ServeContent passes) still goes to sendfile.
	src, remain := r, int64(-1)
	lr, limited := r.(*io.LimitedReader)
	if limited {
		src, remain = lr.R, lr.N
	}
	var total int64
	for remain != 0 {
		n := int64(SendChunk)
		if remain > 0 && remain < n {
			n = remain
		}
		c.arm()
		w, err := rf.ReadFrom(&io.LimitedReader{R: src, N: n})
		total += w
		if limited {
			remain -= w
			lr.N = remain
		}
		if err != nil || w < n {
			return total, err // w < n without error: src is at its end
		}
	}
	return total, nil
}

// CloseWrite half-closes the connection when the underlying one can:
// net/http uses it to close without resetting a response still in flight.
func (c *conn) CloseWrite() error {
	if cw, ok := c.Conn.(interface{ CloseWrite() error }); ok {
		return cw.CloseWrite()
	}
	return nil
}

// writerOnly hides every method but Write (so io.Copy does not call
// ReadFrom again).
type writerOnly struct{ io.Writer }
