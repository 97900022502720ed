// Package accesslog writes modproxy's access-log lines: one line per
// request with fixed fields (Entry), in the JSON or text format of
// log/slog's own handlers.
//
// Formatting a record through slog's generic attribute machinery costs
// more than serving a small cached file, so a Handler (a slog.Handler that
// passes every other record to slog's JSON or text handler on the same
// writer) formats access-log lines itself: appended to a reused buffer,
// without allocation. A line is byte for byte what slog's
// handler writes for the same record, attributes added with WithAttrs
// included; a line whose strings would need escaping or quoting, or a
// handler under WithGroup, goes through slog's handler instead, so the
// output is the same either way.
//
// The line (JSON; text is "time=... level=INFO msg=request method=GET ..."):
//
//	{"time":"2006-01-02T15:04:05.999999999Z","level":"INFO","msg":"request",
//	 "method":"GET","path":"/example.com/a/@v/v1.0.0.info","status":200,
//	 "bytes":48,"duration":0.000041,"cache":"hit","remote":"127.0.0.1"}
//
// with attributes from WithAttrs (such as "namespace") after "msg",
// "cache" only when the request had a cache outcome and "identity" only
// when it had one. "duration" is in seconds in JSON (a number, see
// Seconds) and a Go duration ("41µs") in text; "time" has nanoseconds in
// JSON and milliseconds in text (as slog writes them). Records below Info
// (health probes) go through slog's handler.
package accesslog

import (
	"bytes"
	"context"
	"io"
	"log/slog"
	"math"
	"strconv"
	"sync"
	"time"
)

// Message is the message of every access-log line.
const Message = "request"

// Entry is what one access-log line records.
type Entry struct {
	Time     time.Time // when the answer was complete; the line's "time"
	Method   string
	Path     string
	Status   int
	Bytes    int64 // body bytes sent
	Duration time.Duration
	Identity string     // who asked (a token or certificate mapping name); "" when anonymous
	Level    slog.Level // Info unless set (health probes are logged at Debug)
	Cache    string     // cache outcome (hit, miss, ...); omitted when empty
	Remote   string     // the client's address without port (the TCP peer)
}

// attrs appends e's fields to dst as slog attributes, in the line's order.
func (e *Entry) attrs(dst []slog.Attr) []slog.Attr {
	dst = append(dst,
		slog.String("method", e.Method),
		slog.String("path", e.Path),
		slog.Int("status", e.Status),
		slog.Int64("bytes", e.Bytes),
		slog.Duration("duration", e.Duration),
	)
	if e.Cache != "" {
		dst = append(dst, slog.String("cache", e.Cache))
	}
	if e.Identity != "" {
		dst = append(dst, slog.String("identity", e.Identity))
	}
	return append(dst, slog.String("remote", e.Remote))
}

// Log writes e to l at level Info with message Message. When l's handler
// is a *Handler the line is formatted directly; otherwise it is an
// ordinary record for l's handler (without source position). Safe for
// concurrent use when l is.
func Log(ctx context.Context, l *slog.Logger, e *Entry) {
	h := l.Handler()
	if !h.Enabled(ctx, e.Level) {
		return
	}
	if ah, ok := h.(*Handler); ok && e.Level == slog.LevelInfo && ah.writeLine(e) {
		return
	}
	var a [8]slog.Attr
	r := slog.NewRecord(e.Time, e.Level, Message, 0)
	r.AddAttrs(e.attrs(a[:0])...)
	_ = h.Handle(ctx, r)
}

// Format is the format of a Handler's output.
type Format int

// The formats: those of slog.NewTextHandler and slog.NewJSONHandler.
const (
	Text Format = iota
	JSON
)

// Handler is a slog.Handler writing in the format of slog's text or JSON
// handler (it passes every record to one), which Log can hand access-log
// lines to directly. Each line is written to the writer with one Write
// call, under a mutex shared by every handler derived with WithAttrs and
// WithGroup. Safe for concurrent use.
type Handler struct {
	inner   slog.Handler
	out     *output
	prefix  []byte // attributes from WithAttrs, as they follow "msg" in a line
	grouped bool   // under WithGroup: access-log lines go through inner
}

// output is the writer shared by a Handler and those derived from it.
type output struct {
	mu   sync.Mutex
	w    io.Writer
	json bool
	bufs sync.Pool // *[]byte
}

func (o *output) Write(p []byte) (int, error) {
	o.mu.Lock()
	defer o.mu.Unlock()
	return o.w.Write(p)
}

// NewHandler returns a Handler writing to w in format f, with records
// below level dropped (nil: Info).
func NewHandler(w io.Writer, f Format, level slog.Leveler) *Handler {
	out := &output{w: w, json: f == JSON}
	opts := &slog.HandlerOptions{Level: level}
	var inner slog.Handler
	if out.json {
		opts.ReplaceAttr = Seconds
		inner = slog.NewJSONHandler(out, opts)
	} else {
		inner = slog.NewTextHandler(out, opts)
	}
	return &Handler{inner: inner, out: out}
}

// Enabled implements slog.Handler.
func (h *Handler) Enabled(ctx context.Context, l slog.Level) bool { return h.inner.Enabled(ctx, l) }

// Handle implements slog.Handler.
func (h *Handler) Handle(ctx context.Context, r slog.Record) error { return h.inner.Handle(ctx, r) }

// WithAttrs implements slog.Handler.
func (h *Handler) WithAttrs(as []slog.Attr) slog.Handler {
	if len(as) == 0 {
		return h
	}
	d := &Handler{inner: h.inner.WithAttrs(as), out: h.out, grouped: h.grouped}
	if !h.grouped {
		d.prefix = append(append([]byte(nil), h.prefix...), preformat(h.out.json, as)...)
	}
	return d
}

// WithGroup implements slog.Handler.
func (h *Handler) WithGroup(name string) slog.Handler {
	if name == "" {
		return h
	}
	return &Handler{inner: h.inner.WithGroup(name), out: h.out, grouped: true}
}

// preformat returns attributes as slog's handler writes them after "msg":
// it formats a record with an empty message through a handler of its own
// and cuts the text that comes before and after them.
func preformat(json bool, as []slog.Attr) []byte {
	var b bytes.Buffer
	var sh slog.Handler
	head, tail := `level=INFO msg=""`, "\n"
	if json {
		sh, head, tail = slog.NewJSONHandler(&b, nil), `{"level":"INFO","msg":""`, "}\n"
	} else {
		sh = slog.NewTextHandler(&b, nil)
	}
	_ = sh.WithAttrs(as).Handle(context.Background(), slog.NewRecord(time.Time{}, slog.LevelInfo, "", 0))
	s := b.Bytes()
	return bytes.Clone(s[len(head) : len(s)-len(tail)])
}

// writeLine writes e's line, or reports false when it must go through the
// inner handler instead (grouped, a string that needs escaping, a time
// slog cannot write as JSON).
func (h *Handler) writeLine(e *Entry) bool {
	if h.grouped || !plain(e.Method) || !plain(e.Path) || !plain(e.Remote) || (e.Cache != "" && !plain(e.Cache)) || (e.Identity != "" && !plain(e.Identity)) ||
		e.Time.IsZero() || e.Time.Year() < 0 || e.Time.Year() > 9999 {
		return false
	}
	bp, _ := h.out.bufs.Get().(*[]byte)
	if bp == nil {
		bp = new([]byte)
	}
	b := (*bp)[:0]
	if h.out.json {
		b = append(b, `{"time":"`...)
		b = e.Time.AppendFormat(b, time.RFC3339Nano)
		b = append(b, `","level":"INFO","msg":"request"`...)
		b = append(b, h.prefix...)
		b = append(append(b, `,"method":"`...), e.Method...)
		b = append(append(b, `","path":"`...), e.Path...)
		b = strconv.AppendInt(append(b, `","status":`...), int64(e.Status), 10)
		b = strconv.AppendInt(append(b, `,"bytes":`...), e.Bytes, 10)
		b = appendJSONFloat(append(b, `,"duration":`...), e.Duration.Seconds())
		if e.Cache != "" {
			b = append(append(b, `,"cache":"`...), e.Cache...)
			b = append(b, '"')
		}
		if e.Identity != "" {
			b = append(append(b, `,"identity":"`...), e.Identity...)
			b = append(b, '"')
		}
		b = append(append(b, `,"remote":"`...), e.Remote...)
		b = append(b, "\"}\n"...)
	} else {
		b = appendRFC3339Millis(append(b, "time="...), e.Time)
		b = append(b, " level=INFO msg=request"...)
		b = append(b, h.prefix...)
		b = append(append(b, " method="...), e.Method...)
		b = append(append(b, " path="...), e.Path...)
		b = strconv.AppendInt(append(b, " status="...), int64(e.Status), 10)
		b = strconv.AppendInt(append(b, " bytes="...), e.Bytes, 10)
		b = append(append(b, " duration="...), e.Duration.String()...)
		if e.Cache != "" {
			b = append(append(b, " cache="...), e.Cache...)
		}
		if e.Identity != "" {
			b = append(append(b, " identity="...), e.Identity...)
		}
		b = append(append(b, " remote="...), e.Remote...)
		b = append(b, '\n')
	}
	_, _ = h.out.Write(b)
	*bp = b
	h.out.bufs.Put(bp)
	return true
}

// plain reports a string that both slog formats write as it is: not
// empty, printable ASCII without space, '"', '\\' and '='.
func plain(s string) bool {
	if s == "" {
		return false
	}
	for i := 0; i < len(s); i++ {
		if c := s[i]; c <= ' ' || c >= 0x7f || c == '"' || c == '\\' || c == '=' {
			return false
		}
	}
	return true
}

// appendRFC3339Millis appends t as slog's text handler writes a record's time: RFC 3339
// with exactly three digits of fractional seconds (the same steps as
// log/slog's function of that name).
func appendRFC3339Millis(b []byte, t time.Time) []byte {
	const prefixLen = len("2006-01-02T15:04:05.000")
	n := len(b)
	t = t.Truncate(time.Millisecond).Add(time.Millisecond / 10)
	b = t.AppendFormat(b, time.RFC3339Nano)
	return append(b[:n+prefixLen], b[n+prefixLen+1:]...) // drop the 4th digit
}

// Seconds is the JSON format's slog.HandlerOptions.ReplaceAttr: durations
// are written as seconds (a JSON number, 1.5), the unit log processors and
// Prometheus use, instead of slog's integer nanoseconds. The text format
// keeps Go's duration strings (1.5s).
func Seconds(_ []string, a slog.Attr) slog.Attr {
	if a.Value.Kind() == slog.KindDuration {
		a.Value = slog.Float64Value(a.Value.Duration().Seconds())
	}
	return a
}

// appendJSONFloat appends f as encoding/json (and so slog's JSON handler)
// writes a float64: 'f' format, or 'e' with a two-digit exponent trimmed
// below 1e-6 and from 1e21.
func appendJSONFloat(b []byte, f float64) []byte {
	format := byte('f')
	if abs := math.Abs(f); abs != 0 && (abs < 1e-6 || abs >= 1e21) {
		format = 'e'
	}
	b = strconv.AppendFloat(b, f, format, -1, 64)
	if format == 'e' {
		if n := len(b); n >= 4 && b[n-4] == 'e' && b[n-3] == '-' && b[n-2] == '0' {
			b[n-2] = b[n-1]
			b = b[:n-1]
		}
	}
	return b
}
