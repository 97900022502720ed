// Package proxyclient is an upstream.Fetcher for an HTTP GOPROXY server.
package proxyclient

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/modproxy/modproxy/internal/upstream"
)

// Options configures a Client. Zero values get the defaults noted.
type Options struct {
	ConnectTimeout time.Duration // TCP connect and TLS handshake; default 10s
	Timeout        time.Duration // whole fetch, body included; default 5m
	HeaderTimeout  time.Duration // until the response headers; default: Timeout
	MaxZipSize     int64         // limit for .zip bodies; default 500 MiB
	MaxFileSize    int64         // limit for every other body; default 16 MiB
	UserAgent      string
	// Transport overrides the HTTP transport (tests); ConnectTimeout is then ignored.
	Transport http.RoundTripper
}

// Client fetches from one GOPROXY base URL. It is safe for concurrent use.
type Client struct {
	base    *url.URL
	display string // base without credentials, for errors and logs
	hc      *http.Client
	opts    Options
	site    bool // a plain download site (NewSite), not a GOPROXY
}

// New returns a Client for baseURL (http or https).
func New(baseURL string, opts Options) (*Client, error) {
	u, err := url.Parse(baseURL)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return nil, fmt.Errorf("upstream %q: not an http(s) URL", upstream.RedactURL(baseURL))
	}
	if opts.ConnectTimeout <= 0 {
		opts.ConnectTimeout = 10 * time.Second
	}
	if opts.Timeout <= 0 {
		opts.Timeout = 5 * time.Minute
	}
	if opts.MaxZipSize <= 0 {
		opts.MaxZipSize = 500 << 20
	}
	if opts.MaxFileSize <= 0 {
		opts.MaxFileSize = 16 << 20
	}
	rt := opts.Transport
	if rt == nil {
		d := &net.Dialer{Timeout: opts.ConnectTimeout, KeepAlive: 30 * time.Second}
		rt = &http.Transport{
			Proxy:                 http.ProxyFromEnvironment,
			DialContext:           d.DialContext,
			TLSHandshakeTimeout:   opts.ConnectTimeout,
			ForceAttemptHTTP2:     true,
			MaxIdleConns:          256,
			MaxIdleConnsPerHost:   64,
			IdleConnTimeout:       90 * time.Second,
			ResponseHeaderTimeout: opts.HeaderTimeout,
			ExpectContinueTimeout: time.Second,
		}
	}
	return &Client{
		base:    u,
		display: upstream.RedactURL(strings.TrimRight(baseURL, "/")),
		hc: &http.Client{Transport: rt, CheckRedirect: func(req *http.Request, via []*http.Request) error {
			if len(via) >= 5 {
				return errors.New("stopped after 5 redirects")
			}
			return nil
		}},
		opts: opts,
	}, nil
}

// String returns the base URL without credentials.
func (c *Client) String() string { return c.display }

// Fetch implements upstream.Fetcher. path must be a protocol path (or, for
// a checksum database's own URL, a path relative to the database): the
// request URL is built again from its parsed module path and version (see
// requestURL), and a path that does not parse is not sent.
func (c *Client) Fetch(ctx context.Context, path string) (*upstream.Response, error) {
	ctx, cancel := context.WithTimeout(ctx, c.opts.Timeout)
	fail := func(status int, msg string, err error) (*upstream.Response, error) {
		cancel()
		return nil, &upstream.Error{Upstream: c.display, Path: path, Status: status, Msg: msg, Err: err, Timeout: isTimeout(ctx, err)}
	}
	target, err := c.url(path)
	if err != nil {
		return fail(0, "not sent: "+upstream.Sanitize(err.Error(), 200), err)
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, target, nil)
	if err != nil {
		return fail(0, "bad request", err)
	}
	if c.opts.UserAgent != "" {
		req.Header.Set("User-Agent", c.opts.UserAgent)
	}
	resp, err := c.hc.Do(req)
	if err != nil {
		return fail(0, transportMsg(ctx, err), err)
	}
	if resp.StatusCode != http.StatusOK {
		b, _ := io.ReadAll(io.LimitReader(resp.Body, 1024))
		resp.Body.Close()
		cancel()
		return nil, &upstream.Error{Upstream: c.display, Path: path, Status: resp.StatusCode,
			Msg: upstream.Sanitize(string(b), 200), RetryAfter: retryAfter(resp.Header.Get("Retry-After"), time.Now())}
	}
	limit := c.opts.MaxFileSize
	if c.site || strings.HasSuffix(path, ".zip") {
		limit = c.opts.MaxZipSize
	}
	if resp.ContentLength > limit {
		resp.Body.Close()
		return fail(0, fmt.Sprintf("body of %d bytes exceeds the limit of %d", resp.ContentLength, limit), upstream.ErrTooLarge)
	}
	return &upstream.Response{
		Body:   &body{rc: resp.Body, left: limit, cancel: cancel, ctx: ctx, c: c, path: path},
		Size:   resp.ContentLength,
		Source: c.display,
	}, nil
}

// url is the request URL of path: requestURL for a GOPROXY, siteURL for
// a download site.
func (c *Client) url(path string) (string, error) {
	if c.site {
		return siteURL(c.base, path)
	}
	return requestURL(c.base, path)
}

// retryAfter parses a Retry-After header (seconds or an HTTP date).
func retryAfter(v string, now time.Time) time.Duration {
	if v == "" {
		return 0
	}
	if n, err := strconv.Atoi(v); err == nil && n > 0 {
		return time.Duration(n) * time.Second
	}
	if t, err := http.ParseTime(v); err == nil && t.After(now) {
		return t.Sub(now)
	}
	return 0
}

func isTimeout(ctx context.Context, err error) bool {
	if errors.Is(ctx.Err(), context.DeadlineExceeded) {
		return true
	}
	var ne net.Error
	return err != nil && errors.As(err, &ne) && ne.Timeout()
}

func transportMsg(ctx context.Context, err error) string {
	if isTimeout(ctx, err) {
		return "timed out"
	}
	var ue *url.Error
	if errors.As(err, &ue) {
		err = ue.Err
	}
	return upstream.Sanitize(err.Error(), 200)
}

// body enforces the size limit and releases the fetch deadline on Close.
type body struct {
	rc     io.ReadCloser
	left   int64
	cancel context.CancelFunc
	ctx    context.Context
	c      *Client
	path   string
}

func (b *body) Read(p []byte) (int, error) {
	if int64(len(p)) > b.left+1 {
		p = p[:b.left+1]
	}
	n, err := b.rc.Read(p)
	b.left -= int64(n)
	if b.left < 0 {
		return n, &upstream.Error{Upstream: b.c.display, Path: b.path, Msg: "body exceeds the size limit", Err: upstream.ErrTooLarge}
	}
	if err != nil && err != io.EOF {
		return n, &upstream.Error{Upstream: b.c.display, Path: b.path, Msg: "reading body: " + transportMsg(b.ctx, err), Err: err, Timeout: isTimeout(b.ctx, err)}
	}
	return n, err
}

func (b *body) Close() error {
	err := b.rc.Close()
	b.cancel()
	return err
}
