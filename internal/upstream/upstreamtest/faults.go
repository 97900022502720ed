package upstreamtest

import (
	"archive/zip"
	"bytes"
	"fmt"
	"net"
	"net/http"
	"path"
	"strconv"
	"strings"
	"time"
)

// FaultKind is what an injected fault does to a matching request.
// The zero FaultKind is invalid.
type FaultKind int

const (
	// NotFound answers 404 with a one-line body starting with "not found: ".
	NotFound FaultKind = iota + 1
	// Gone answers 410 with a one-line body.
	Gone
	// ServerError answers 500 with a one-line body.
	ServerError
	// Status answers Fault.Code (100..999; 0 means 500) with a one-line body.
	Status
	// Hang sends nothing and blocks until the request's context is done or
	// the server stops; then the connection is closed without a response.
	Hang
	// Reset sends the honest status line and headers (with the full
	// Content-Length) and the first half of the body, then closes the TCP
	// connection abruptly (SO_LINGER 0, so the peer sees a reset).
	Reset
	// SlowBody sends the honest headers and the body in chunks of
	// Fault.Chunk bytes (default 64): the first at once, then one every
	// Fault.Delay (default 10ms). If the client goes away or the server
	// stops, the connection is closed mid-body.
	SlowBody
	// WrongVersion answers about another version than the one asked (or
	// resolved from a query or @latest): .info and @latest report it, and
	// .zip and .mod are those of it. The other version is the highest served
	// version of the same module that differs, or, if there is none, a
	// made-up vN.999.0 of the same major version (+incompatible kept): its
	// zip holds the same files under the made-up version, and .mod is
	// unchanged. Other paths are answered honestly.
	WrongVersion
	// CorruptZip flips one byte of a 200 .zip body (inside the compressed
	// data of the first non-empty entry), keeping its length. Other paths
	// are answered honestly.
	CorruptZip
	// TamperMod appends an extra line to a 200 .mod body. Other paths are
	// answered honestly.
	TamperMod
	// Delay waits Fault.Delay, then answers honestly. If the client goes away
	// or the server stops first, the connection is closed without a response.
	Delay
	// RetryAfter answers 503 with "Retry-After: Fault.Code" (seconds).
	RetryAfter
)

// String returns the kind's name, e.g. "NotFound".
func (k FaultKind) String() string {
	switch k {
	case NotFound:
		return "NotFound"
	case Gone:
		return "Gone"
	case ServerError:
		return "ServerError"
	case Status:
		return "Status"
	case Hang:
		return "Hang"
	case Reset:
		return "Reset"
	case SlowBody:
		return "SlowBody"
	case WrongVersion:
		return "WrongVersion"
	case CorruptZip:
		return "CorruptZip"
	case TamperMod:
		return "TamperMod"
	case Delay:
		return "Delay"
	case RetryAfter:
		return "RetryAfter"
	}
	return "FaultKind(" + strconv.Itoa(int(k)) + ")"
}

// Fault is a misbehaviour injected with [Server.SetFault].
type Fault struct {
	Kind FaultKind
	// Code is the status of Status and the Retry-After seconds of RetryAfter.
	Code int
	// Delay is the wait of Delay and the pause between chunks of SlowBody.
	Delay time.Duration
	// Chunk is the chunk size in bytes of SlowBody.
	Chunk int
	// Times limits the fault to the first Times matching requests, after
	// which it heals (and a less specific fault may match). 0 means always.
	Times int
}

// tamperLine is what TamperMod appends to a .mod body.
const tamperLine = "// tampered by upstreamtest\n"

// validate reports a misuse of Fault.
func (f Fault) validate() error {
	switch {
	case f.Kind < NotFound || f.Kind > RetryAfter:
		return fmt.Errorf("invalid fault kind %v", f.Kind)
	case f.Times < 0:
		return fmt.Errorf("fault %v: negative Times %d", f.Kind, f.Times)
	case f.Delay < 0:
		return fmt.Errorf("fault %v: negative Delay %v", f.Kind, f.Delay)
	case f.Chunk < 0:
		return fmt.Errorf("fault %v: negative Chunk %d", f.Kind, f.Chunk)
	case f.Kind == Status && f.Code != 0 && (f.Code < 100 || f.Code > 999):
		return fmt.Errorf("fault Status: Code %d is not an HTTP status", f.Code)
	case f.Kind == RetryAfter && f.Code < 0:
		return fmt.Errorf("fault RetryAfter: negative Code %d", f.Code)
	}
	return nil
}

// allPaths is the SetFault key that matches every request.
const allPaths = "ALL"

// rule is one fault set by SetFault.
type rule struct {
	key       string // exact path, path.Match pattern, or allPaths
	fault     Fault
	remaining int // requests left before healing; -1 = never heals
}

// faults is an ordered set of rules. It is guarded by Server.mu.
type faults struct {
	rules []*rule
}

// set adds or replaces the rule for key.
func (fs *faults) set(key string, f Fault) {
	remaining := -1
	if f.Times > 0 {
		remaining = f.Times
	}
	for _, r := range fs.rules {
		if r.key == key {
			r.fault, r.remaining = f, remaining
			return
		}
	}
	fs.rules = append(fs.rules, &rule{key: key, fault: f, remaining: remaining})
}

// match finds the fault for the request path p and consumes one of its
// Times. The exact key wins over patterns (in the order they were set),
// which win over "ALL". Healed rules do not match.
func (fs *faults) match(p string) (Fault, bool) {
	pick := func(ok func(*rule) bool) *rule {
		for _, r := range fs.rules {
			if r.remaining != 0 && ok(r) {
				return r
			}
		}
		return nil
	}
	r := pick(func(r *rule) bool { return r.key == p })
	if r == nil {
		r = pick(func(r *rule) bool {
			if r.key == allPaths {
				return false
			}
			ok, _ := path.Match(r.key, p)
			return ok
		})
	}
	if r == nil {
		r = pick(func(r *rule) bool { return r.key == allPaths })
	}
	if r == nil {
		return Fault{}, false
	}
	if r.remaining > 0 {
		r.remaining--
	}
	return r.fault, true
}

// serveFault answers a request that matched fault f. p is the request path
// relative to the base; done is closed when the request's context is done
// or the server stops.
func (s *Server) serveFault(w http.ResponseWriter, r *http.Request, p string, f Fault, done <-chan struct{}) {
	switch f.Kind {
	case NotFound:
		writeResponse(w, textResponse(http.StatusNotFound, "not found: upstreamtest: injected fault for "+p))
	case Gone:
		writeResponse(w, textResponse(http.StatusGone, "gone: upstreamtest: injected fault for "+p))
	case ServerError:
		writeResponse(w, textResponse(http.StatusInternalServerError, "upstreamtest: injected server error for "+p))
	case Status:
		code := f.Code
		if code == 0 {
			code = http.StatusInternalServerError
		}
		writeResponse(w, textResponse(code, fmt.Sprintf("upstreamtest: injected status %d for %s", code, p)))
	case RetryAfter:
		resp := textResponse(http.StatusServiceUnavailable, "upstreamtest: injected unavailability for "+p)
		resp.header.Set("Retry-After", strconv.Itoa(f.Code))
		writeResponse(w, resp)
	case Hang:
		<-done
		panic(http.ErrAbortHandler)
	case Delay:
		if !sleep(f.Delay, done) {
			panic(http.ErrAbortHandler)
		}
		writeResponse(w, s.honest(r, p, false))
	case Reset:
		reset(w, s.honest(r, p, false))
	case SlowBody:
		drip(w, s.honest(r, p, false), f, done)
	case WrongVersion:
		writeResponse(w, s.honest(r, p, true))
	case CorruptZip:
		resp := s.honest(r, p, false)
		if strings.HasSuffix(p, ".zip") && resp.code == http.StatusOK && len(resp.body) > 0 {
			resp.body = corruptZip(resp.body)
		}
		writeResponse(w, resp)
	case TamperMod:
		resp := s.honest(r, p, false)
		if strings.HasSuffix(p, ".mod") && resp.code == http.StatusOK {
			resp.body = tamperMod(resp.body)
		}
		writeResponse(w, resp)
	default:
		// Unreachable: SetFault validates the kind.
		writeResponse(w, textResponse(http.StatusInternalServerError, "upstreamtest: unknown fault kind "+f.Kind.String()))
	}
}

// sleep waits d and reports whether it did so before done was closed.
func sleep(d time.Duration, done <-chan struct{}) bool {
	if d <= 0 {
		return true
	}
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return true
	case <-done:
		return false
	}
}

// reset writes resp's status line, headers and the first half of its body
// on the raw connection, then closes it with SO_LINGER 0 so that the peer
// sees a connection reset instead of an orderly end.
func reset(w http.ResponseWriter, resp response) {
	conn, brw, err := http.NewResponseController(w).Hijack()
	if err != nil {
		panic(http.ErrAbortHandler)
	}
	defer func() {
		if tc, ok := conn.(*net.TCPConn); ok {
			_ = tc.SetLinger(0)
		}
		_ = conn.Close()
	}()
	// Advertise at least one byte, so that an empty body is truncated too.
	length := max(len(resp.body), 1)
	h := resp.header.Clone()
	h.Set("Content-Length", strconv.Itoa(length))
	fmt.Fprintf(brw, "HTTP/1.1 %d %s\r\n", resp.code, http.StatusText(resp.code))
	_ = h.Write(brw)
	_, _ = brw.WriteString("\r\n")
	_, _ = brw.Write(resp.body[:len(resp.body)/2])
	_ = brw.Flush()
}

// drip writes resp with its full Content-Length, and its body in chunks of
// f.Chunk bytes, one every f.Delay. It aborts the connection when done is
// closed.
func drip(w http.ResponseWriter, resp response, f Fault, done <-chan struct{}) {
	chunk := f.Chunk
	if chunk <= 0 {
		chunk = 64
	}
	delay := f.Delay
	if delay <= 0 {
		delay = 10 * time.Millisecond
	}
	rc := http.NewResponseController(w)
	writeHeader(w, resp)
	_ = rc.Flush()
	for off := 0; off < len(resp.body); off += chunk {
		if off > 0 && !sleep(delay, done) {
			panic(http.ErrAbortHandler)
		}
		end := min(off+chunk, len(resp.body))
		if _, err := w.Write(resp.body[off:end]); err != nil {
			return
		}
		if err := rc.Flush(); err != nil {
			return
		}
	}
}

// corruptZip returns a copy of z with one byte flipped: in the middle of the
// compressed data of the first non-empty entry, so that the damage is always
// detected (by the decompressor, the CRC or the hash), or, if z is not a
// readable zip, in the middle of z.
func corruptZip(z []byte) []byte {
	out := bytes.Clone(z)
	i := len(out) / 2
	if zr, err := zip.NewReader(bytes.NewReader(z), int64(len(z))); err == nil {
		for _, f := range zr.File {
			if f.CompressedSize64 == 0 {
				continue
			}
			if off, err := f.DataOffset(); err == nil {
				i = int(off) + int(f.CompressedSize64/2)
				break
			}
		}
	}
	out[i] ^= 0xff
	return out
}

// tamperMod returns a copy of gomod with tamperLine appended.
func tamperMod(gomod []byte) []byte {
	out := bytes.Clone(gomod)
	if len(out) > 0 && out[len(out)-1] != '\n' {
		out = append(out, '\n')
	}
	return append(out, tamperLine...)
}
