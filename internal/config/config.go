// Package config is modproxy's configuration: defaults, the TOML file,
// MODPROXY_* environment overrides and validation of its syntax (types,
// known keys, enumerations, durations, sizes). What only other packages
// understand (upstream lists in GOPROXY syntax, version ranges of deny
// rules) is validated by package app, with errors of this package's Error
// type naming the key. It is a leaf: it imports no other modproxy package.
//
// Precedence, lowest first: built-in defaults (some read from `go env`),
// the config file, MODPROXY_* environment variables, command-line flags.
// Every key "section.name" of the file has the environment variable
// MODPROXY_SECTION_NAME (e.g. cache.ttl -> MODPROXY_CACHE_TTL).
package config

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"net"
	"net/url"
	"os"
	"path/filepath"
	"reflect"
	"strconv"
	"strings"
	"time"

	"github.com/pelletier/go-toml/v2"
)

// Config is the whole configuration.
type Config struct {
	// Listen is the address of the GOPROXY listener.
	Listen string `toml:"listen"`
	// CacheDir holds the store.
	CacheDir string `toml:"cache_dir"`
	// Upstream is the upstream list in GOPROXY syntax; default `go env GOPROXY`.
	Upstream string `toml:"upstream"`
	// SumDB lists the checksum databases proxied under /sumdb/, each as
	// GOSUMDB accepts it ("NAME", "NAME+KEY" or "NAME+KEY URL"); default
	// `go env GOSUMDB`. "off" proxies none.
	SumDB []string `toml:"sumdb"`
	// ShutdownTimeout bounds the wait for in-flight requests on shutdown.
	ShutdownTimeout Duration `toml:"shutdown_timeout"`
	// Server bounds what clients may hold of both listeners.
	Server Server `toml:"server"`

	// Offline starts in cache-only mode: nothing is fetched upstream.
	Offline bool `toml:"offline"`

	Log        Log        `toml:"log"`
	Cache      Cache      `toml:"cache"`
	Fetch      Fetch      `toml:"fetch"`
	Resilience Resilience `toml:"resilience"`
	Direct     Direct     `toml:"direct"`
	Verify     Verify     `toml:"verify"`
	GC         GC         `toml:"gc"`
	Admin      Admin      `toml:"admin"`
	Audit      Audit      `toml:"audit"`
	Storage    Storage    `toml:"storage"`
	Cluster    Cluster    `toml:"cluster"`
	TLS        TLS        `toml:"tls"`
	Auth       Auth       `toml:"auth"`

	// Routes map module path patterns to an upstream list; the first
	// match wins; unmatched paths use Upstream. File only.
	Routes []Route `toml:"route"`
	// Deny blocks modules or version ranges. File only.
	Deny []DenyRule `toml:"deny"`
	// Allow, when not empty, serves only modules matching these patterns.
	Allow []string `toml:"allow"`
	// Namespaces are served under /NAME/, each with its own upstreams,
	// routes, deny rules and list/latest freshness, sharing the store's
	// immutable content. File only.
	Namespaces []Namespace `toml:"namespace"`

	// Policy is the supply-chain policy (vulnerable versions, cooldown,
	// retractions) of the root and of namespaces without their own.
	Policy Policy `toml:"policy"`
	// DL mirrors the Go toolchain distribution site at /dl/.
	DL DL `toml:"dl"`
	// Webhooks receive notable events as signed JSON POSTs. File only.
	Webhooks []Webhook `toml:"webhook"`
	// Hosted are the module path patterns whose versions are published to
	// this proxy (modproxy publish) instead of fetched. File only.
	Hosted []Hosted `toml:"hosted"`
	// HostedLog configures the private log of hosted versions.
	HostedLog HostedLog `toml:"hosted_log"`
	// Warm fills files ahead of the go command's requests for them.
	Warm Warm `toml:"warm"`
	// Vuln configures the vulnerability database served under /vuln/.
	Vuln Vuln `toml:"vuln"`
}

// DL configures the mirror of the Go toolchain distribution site at /dl/
// (usable as setup-go's go-download-base-url).
type DL struct {
	// Source is the site's base URL (its listing is SOURCE/?mode=json);
	// empty: no mirror, /dl/ answers 404.
	Source string `toml:"source"`
	// TTL is how long the site's listing is fresh; 0: cache.ttl.
	TTL Duration `toml:"ttl"`
	// MaxSize bounds one archive.
	MaxSize ByteSize `toml:"max_size"`
	// MaxTotal bounds the stored archives (least recently served evicted
	// first, whole); 0: unbounded. The module GC does not count them.
	MaxTotal ByteSize `toml:"max_total"`
	// MaxFetches bounds the archives fetched from the site at a time;
	// requests for other archives wait for a slot.
	MaxFetches int `toml:"max_fetches"`
}

// ListingTTL is dl.ttl, or cache.ttl when it is 0.
func (c Config) ListingTTL() time.Duration {
	if c.DL.TTL > 0 {
		return time.Duration(c.DL.TTL)
	}
	return time.Duration(c.Cache.TTL)
}

// Webhook is one outbound webhook.
type Webhook struct {
	Name   string   `toml:"name"`   // in logs and metrics; default the URL without credentials and query
	URL    string   `toml:"url"`    // http or https
	Events []string `toml:"events"` // event types (publish, purge, checksum_mismatch, policy_block, breaker_open); empty: all
	Secret string   `toml:"secret"` // HMAC-SHA256 key of X-Modproxy-Signature; empty: unsigned
}

// Hosted is a [[hosted]] entry: module path patterns published here.
type Hosted struct {
	// Match holds GOPRIVATE-style patterns (comma-separated); each must be
	// covered by verify.private (app.Validate checks it).
	Match string `toml:"match"`
	// Namespace is where the modules are published and listed: "" (the
	// default) the root, a [[namespace]]'s name, or "*" everywhere.
	Namespace string `toml:"namespace"`
}

// HostedLog configures the private transparency log of hosted versions.
type HostedLog struct {
	// KeyFile holds the log's signer key (modproxy hosted-key makes one).
	// Required when hosted modules are on a shared (s3) store: every
	// replica signs the shared log with it, so all must have the same.
	// Empty on a disk store: a key is generated in the cache directory's
	// state/hosted/ at first start.
	KeyFile string `toml:"key_file"`
}

// Warm configures warming.
type Warm struct {
	// Zips, when set, fills a module version's .info and .zip in the
	// background after a miss of its .mod, and the .zip after a miss of its
	// .info (the order in which the go command asks for them). A cold
	// `go mod download` took 0.88x the time straight from the upstream
	// instead of 1.51x, for 2 % more upstream bytes (the zips of versions
	// whose go.mod alone is needed). On by default; files the rules or the
	// supply-chain policy would refuse are not warmed, and nothing is
	// warmed in cache-only mode.
	Zips bool `toml:"zips"`
}

// Vuln configures the vulnerability database mirror.
type Vuln struct {
	// Source is the URL of a Go vulnerability database (the vulndb API)
	// to mirror; empty means no mirror (a database imported with
	// `modproxy vuln import` is still served).
	Source string `toml:"source"`
	// Refresh is the interval between refreshes of the mirror (the first
	// one runs at start-up).
	Refresh Duration `toml:"refresh"`
}

// Namespace is a named view of the proxy under /NAME/.
type Namespace struct {
	Name     string     `toml:"name"`     // lower-case letters, digits and dashes
	Upstream string     `toml:"upstream"` // default: the top-level upstream
	TTL      Duration   `toml:"ttl"`      // list/latest/query freshness; default cache.ttl
	Routes   []Route    `toml:"route"`
	Deny     []DenyRule `toml:"deny"`
	Allow    []string   `toml:"allow"`
	Policy   *Policy    `toml:"policy"` // nil: the root's [policy]
}

// Route sends modules matching Match (GOPRIVATE-style patterns,
// comma-separated) to Upstream (GOPROXY syntax; "direct" fetches from
// version control).
type Route struct {
	Match    string `toml:"match"`
	Upstream string `toml:"upstream"`
}

// DenyRule blocks versions of matching modules. Status is the operator's
// syntax for how the refusal looks to clients; app translates it into
// routing's domain notion (refused, or gone).
type DenyRule struct {
	Match    string `toml:"match"`    // module path patterns
	Versions string `toml:"versions"` // e.g. ">=v1.2.0 <v1.2.5"; empty: all versions
	Reason   string `toml:"reason"`   // shown to clients
	Status   int    `toml:"status"`   // 403 (default: stops the go command) or 410 (lets "," lists fall through)
}

// Resilience configures retries, circuit breakers, health probes and
// hedging for every upstream proxy.
type Resilience struct {
	MaxAttempts    int      `toml:"max_attempts"`    // per request, first included
	BackoffBase    Duration `toml:"backoff_base"`    // exponential backoff with full jitter from here...
	BackoffMax     Duration `toml:"backoff_max"`     // ...up to here
	RequestTimeout Duration `toml:"request_timeout"` // one request to one upstream, every attempt and backoff included
	// A breaker opens when, within breaker_window, at least
	// breaker_min_requests requests were made to its upstream and at least
	// breaker_failure_rate (0 < r <= 1) of them failed after their retries.
	BreakerFailureRate float64  `toml:"breaker_failure_rate"`
	BreakerMinRequests int      `toml:"breaker_min_requests"`
	BreakerWindow      Duration `toml:"breaker_window"`
	// BreakerFailures is deprecated (0: unset): N stands for
	// breaker_min_requests = N and breaker_failure_rate = 1 (N requests in
	// the window, none of them answered), overriding both; see Breaker.
	BreakerFailures int      `toml:"breaker_failures"`
	BreakerOpen     Duration `toml:"breaker_open"`   // how long a breaker stays open before a trial
	HeaderTimeout   Duration `toml:"header_timeout"` // per attempt: an upstream slower than this to answer fails over
	ProbeInterval   Duration `toml:"probe_interval"` // active health probes; 0 disables
	ProbeFailures   int      `toml:"probe_failures"` // failed probes in a row that open a breaker
	ProbePath       string   `toml:"probe_path"`     // protocol path probed; default sumdb/NAME/supported
	HedgeDelay      Duration `toml:"hedge_delay"`    // hedge list/latest to the next upstream after this; 0 disables
}

// Breaker returns the failure rate and minimum number of requests that
// open a breaker: those the deprecated breaker_failures stands for when it
// is set, else breaker_failure_rate and breaker_min_requests.
func (r Resilience) Breaker() (rate float64, minRequests int) {
	if r.BreakerFailures > 0 {
		return 1, r.BreakerFailures
	}
	return r.BreakerFailureRate, r.BreakerMinRequests
}

// GC configures eviction. Zero values disable each policy.
type GC struct {
	Interval       Duration `toml:"interval"`        // scheduled runs; 0 disables
	MaxSize        ByteSize `toml:"max_size"`        // size cap, least recently used first
	MaxIdle        Duration `toml:"max_idle"`        // evict versions not served for this long
	KeepNewest     int      `toml:"keep_newest"`     // keep only the newest N versions of each module
	Pins           []string `toml:"pins"`            // "module-pattern[@version]" never evicted
	PinSets        []string `toml:"pin_sets"`        // go.sum/go.mod files or directories: all they reference is kept
	TrashRetention Duration `toml:"trash_retention"` // evicted objects stay restorable this long
	TrashMaxSize   ByteSize `toml:"trash_max_size"`  // and the trash is bounded by this (TrashLimit)
	MinFree        ByteSize `toml:"min_free"`        // below this free space on cache_dir's file system, GC runs at once; 0: off
}

// TrashLimit is the bound of the trash: trash_max_size when set; else,
// with a size cap, a tenth of max_size (the trash's share of the cap,
// which bounds objects and trash together); else 0, unbounded.
func (g GC) TrashLimit() int64 {
	switch {
	case g.TrashMaxSize > 0:
		return int64(g.TrashMaxSize)
	case g.MaxSize > 0:
		return int64(g.MaxSize) / 10
	}
	return 0
}

// Storage selects where artifacts live.
type Storage struct {
	Type string `toml:"type"` // "disk" (cache_dir/objects) or "s3"
	S3   S3     `toml:"s3"`
}

// S3 configures an S3-compatible bucket. Credentials left empty come from
// the standard AWS environment, shared credentials file or instance role.
type S3 struct {
	Endpoint  string `toml:"endpoint"` // host[:port] or URL
	Region    string `toml:"region"`
	Bucket    string `toml:"bucket"`
	Prefix    string `toml:"prefix"`
	AccessKey string `toml:"access_key"`
	SecretKey string `toml:"secret_key"`
	Secure    bool   `toml:"secure"`     // https
	PathStyle bool   `toml:"path_style"` // for MinIO-like servers
	// Redirect answers zip requests with a redirect to a pre-signed URL
	// (valid RedirectTTL), so clients download straight from the bucket.
	Redirect    bool     `toml:"redirect"`
	RedirectTTL Duration `toml:"redirect_ttl"`
}

// Cluster configures coordination between replicas sharing a store.
type Cluster struct {
	Redis         string `toml:"redis"` // host:port; empty: no coordination
	RedisPassword string `toml:"redis_password"`
	RedisDB       int    `toml:"redis_db"`
}

// Admin configures the admin API and dashboard listener.
type Admin struct {
	// Listen is AdminAuto (the default), HOST:PORT, or "" or "off"
	// (disabled). AdminAuto is 127.0.0.1 (listen's host when that is a
	// loopback address) on the port after listen's; when that address is
	// taken the server runs without the admin listener and says so. An
	// address given explicitly that cannot be bound is a start-up error.
	Listen string `toml:"listen"`
	Token  string `toml:"token"` // bearer token; required when Listen is not loopback
	// MaxConnections bounds the admin listener's open connections.
	MaxConnections int `toml:"max_connections"`
}

// AdminAuto is the default admin.listen: derived from listen.
const AdminAuto = "auto"

// Off reports whether admin.listen turns the admin listener off.
func (a Admin) Off() bool { return a.Listen == "" || a.Listen == "off" }

// AdminAddr is the address the admin listener binds: admin.listen, or
// for AdminAuto the port after listen's on listen's host when that is
// loopback, else on 127.0.0.1 (never beyond loopback unless asked), and
// port 0 (any) when listen's port is 0. derived reports AdminAuto; addr
// is "" when no port follows listen's. Call it on a validated Config
// whose admin listener is not Off.
func (c Config) AdminAddr() (addr string, derived bool) {
	if c.Admin.Listen != AdminAuto {
		return c.Admin.Listen, false
	}
	host, p, err := net.SplitHostPort(c.Listen)
	if err != nil {
		return "", true
	}
	port, err := net.LookupPort("tcp", p)
	if err != nil || port >= 65535 {
		return "", true
	}
	if port > 0 {
		port++
	}
	if !isLoopback(host) {
		host = "127.0.0.1"
	}
	return net.JoinHostPort(host, strconv.Itoa(port)), true
}

// Server bounds what clients may hold of the listeners (the GOPROXY one
// and the admin one). Responses have no overall deadline: a download
// that keeps moving is never cut, however long it takes.
type Server struct {
	// ReadHeaderTimeout bounds reading a request's headers (also the TLS
	// handshake and the wait for a new connection's first request).
	ReadHeaderTimeout Duration `toml:"read_header_timeout"`
	// ReadTimeout bounds reading a whole request, body included.
	ReadTimeout Duration `toml:"read_timeout"`
	// IdleTimeout closes keep-alive connections idle this long.
	IdleTimeout Duration `toml:"idle_timeout"`
	// SendTimeout closes a connection whose client takes no response
	// bytes for this long (it stopped reading).
	SendTimeout Duration `toml:"send_timeout"`
	// MaxHeaderBytes bounds a request's headers.
	MaxHeaderBytes ByteSize `toml:"max_header_bytes"`
	// MaxConnections bounds the GOPROXY listener's open connections;
	// further clients wait in the accept queue.
	MaxConnections int `toml:"max_connections"`
}

// TLS serves the protocol and admin listeners over HTTPS when CertFile is
// set (PEM files, reloaded when they change or on SIGHUP).
type TLS struct {
	CertFile     string `toml:"cert_file"`
	KeyFile      string `toml:"key_file"`
	ClientCAFile string `toml:"client_ca_file"` // verified client certificates are identities (see Auth.Certificates)
}

// Auth configures who may use the protocol listener.
type Auth struct {
	// Mode is "off" (anyone who reaches the port) or "required" (a token
	// or a mapped client certificate on every protocol request).
	Mode string `toml:"mode"`
	// AllowAnonymous must be set to listen beyond loopback with Mode "off".
	AllowAnonymous bool `toml:"allow_anonymous"`
	// Certificates map verified client certificates to grants. File only.
	Certificates []CertMapping `toml:"certificate"`
}

// CertMapping names the client certificates (by "dns:NAME", "uri:URI",
// "email:ADDR" or "cn:NAME") that get a grant, as a token would.
type CertMapping struct {
	Name       string   `toml:"name"`
	Subjects   []string `toml:"subjects"`
	Scopes     []string `toml:"scopes"`
	Namespaces []string `toml:"namespaces"`
	Match      []string `toml:"match"`
}

// Audit bounds the audit log.
type Audit struct {
	MaxSize  ByteSize `toml:"max_size"`  // rotate beyond this
	MaxFiles int      `toml:"max_files"` // rotated files kept
	MaxAge   Duration `toml:"max_age"`   // rotate a file once its first record is older; 0: size only
}

// Direct configures fetching from version control ("direct" upstreams).
type Direct struct {
	Concurrency int      `toml:"concurrency"` // go commands at once
	Timeout     Duration `toml:"timeout"`     // per go command
}

// Verify configures checksum-verified admission.
type Verify struct {
	// Enabled turns verification on (the default). Turning it off is
	// logged loudly at start-up.
	Enabled bool `toml:"enabled"`
	// Database names the checksum database used for verification (one of
	// sumdb); default the first.
	Database string `toml:"database"`
	// Private lists module path patterns (GONOSUMDB syntax) that are never
	// looked up in a checksum database; default go env GONOSUMDB, which
	// defaults to GOPRIVATE.
	Private []string `toml:"private"`
	// ScrubInterval runs a background scrub (re-hash every stored zip and
	// go.mod, quarantine bad ones) this often; 0 disables it.
	ScrubInterval Duration `toml:"scrub_interval"`
	// QuarantineMaxSize bounds the quarantine directory; oldest files go first.
	QuarantineMaxSize ByteSize `toml:"quarantine_max_size"`
}

// Log configures logging.
type Log struct {
	Format string `toml:"format"` // text or json
	Level  string `toml:"level"`  // debug, info, warn, error
}

// Cache configures freshness of mutable answers (list, latest, queries,
// checksum database heads).
type Cache struct {
	TTL                  Duration `toml:"ttl"`
	StaleWhileRevalidate Duration `toml:"stale_while_revalidate"`
	StaleIfError         Duration `toml:"stale_if_error"`
	NegativeTTL          Duration `toml:"negative_ttl"`
}

// Fetch configures upstream fetches.
type Fetch struct {
	ConnectTimeout Duration `toml:"connect_timeout"`
	Timeout        Duration `toml:"timeout"`
	MaxZipSize     ByteSize `toml:"max_zip_size"`
}

// Default returns the built-in defaults. Upstream and SumDB are empty:
// Resolve fills them from `go env`.
func Default() Config {
	dir, err := os.UserCacheDir()
	if err != nil {
		dir = os.TempDir()
	}
	return Config{
		Listen:          "127.0.0.1:3000",
		CacheDir:        filepath.Join(dir, "modproxy"),
		ShutdownTimeout: Duration(30 * time.Second),
		Server: Server{
			ReadHeaderTimeout: Duration(10 * time.Second),
			ReadTimeout:       Duration(30 * time.Second),
			IdleTimeout:       Duration(2 * time.Minute),
			SendTimeout:       Duration(time.Minute),
			MaxHeaderBytes:    ByteSize(64 << 10),
			MaxConnections:    1024,
		},
		Log: Log{Format: "text", Level: "info"},
		Cache: Cache{
			TTL:                  Duration(time.Minute),
			StaleWhileRevalidate: Duration(10 * time.Minute),
			StaleIfError:         Duration(24 * time.Hour),
			NegativeTTL:          Duration(time.Minute),
		},
		Fetch: Fetch{
			ConnectTimeout: Duration(10 * time.Second),
			Timeout:        Duration(5 * time.Minute),
			MaxZipSize:     ByteSize(500 << 20),
		},
		Resilience: Resilience{
			MaxAttempts:        3,
			BackoffBase:        Duration(100 * time.Millisecond),
			BackoffMax:         Duration(2 * time.Second),
			RequestTimeout:     Duration(5 * time.Minute),
			BreakerFailureRate: 0.5,
			BreakerMinRequests: 10,
			BreakerWindow:      Duration(time.Minute),
			BreakerOpen:        Duration(30 * time.Second),
			HeaderTimeout:      Duration(30 * time.Second),
			ProbeInterval:      Duration(30 * time.Second),
			ProbeFailures:      3,
		},
		Direct: Direct{Concurrency: 4, Timeout: Duration(5 * time.Minute)},
		GC: GC{
			Interval:       Duration(time.Hour),
			TrashRetention: Duration(7 * 24 * time.Hour),
			MinFree:        ByteSize(1 << 30),
		},
		Admin:   Admin{Listen: AdminAuto, MaxConnections: 64},
		Auth:    Auth{Mode: "off"},
		Storage: Storage{Type: "disk", S3: S3{Secure: true, RedirectTTL: Duration(15 * time.Minute)}},
		Audit:   Audit{MaxSize: ByteSize(100 << 20), MaxFiles: 10},
		Verify: Verify{
			Enabled:           true,
			QuarantineMaxSize: ByteSize(1 << 30),
		},
		DL:     DL{MaxSize: ByteSize(1 << 30), MaxTotal: ByteSize(10 << 30), MaxFetches: 2},
		Policy: Policy{Vulnerable: "off", Retracted: "off"},
		Vuln:   Vuln{Refresh: Duration(time.Hour)},
		Warm:   Warm{Zips: true},
	}
}

// Error is a configuration problem; Key names the offending key (empty
// for a file that is not valid TOML), Line and Column its place in the
// file when known (1-based; 0 when not).
type Error struct {
	Source string // "file PATH", "environment", "flag"
	Key    string
	Line   int
	Column int
	Err    error
}

func (e *Error) Error() string {
	where := e.Source
	if e.Line > 0 {
		if where != "" {
			where += ", "
		}
		where += "line " + strconv.Itoa(e.Line)
		if e.Column > 0 {
			where += " column " + strconv.Itoa(e.Column)
		}
	}
	var b strings.Builder
	b.WriteString("config")
	if where != "" {
		b.WriteString(" (" + where + ")")
	}
	b.WriteString(": ")
	if e.Key != "" {
		b.WriteString(e.Key + ": ")
	}
	fmt.Fprint(&b, e.Err)
	return b.String()
}

func (e *Error) Unwrap() error { return e.Err }

// LoadFile applies the TOML file at path over c. Unknown keys are errors,
// every one of them reported (errors.Join of *Error, one per key, each with
// its line); a file that is not valid TOML is an *Error with the line and
// column of the problem.
func (c *Config) LoadFile(path string) error {
	data, err := os.ReadFile(path)
	if err != nil {
		return &Error{Source: "file " + path, Key: "(file)", Err: err}
	}
	var raw map[string]any
	if err := toml.Unmarshal(data, &raw); err == nil {
		if err := checkDurationTypes(reflect.TypeFor[Config](), raw, ""); err != nil {
			err.Source = "file " + path
			return err
		}
	}
	dec := toml.NewDecoder(bytes.NewReader(data)).DisallowUnknownFields()
	if err := dec.Decode(c); err != nil {
		var sme *toml.StrictMissingError
		if errors.As(err, &sme) && len(sme.Errors) > 0 {
			errs := make([]error, len(sme.Errors))
			for i := range sme.Errors {
				de := &sme.Errors[i]
				row, _ := de.Position()
				errs[i] = &Error{Source: "file " + path, Key: strings.Join(de.Key(), "."), Line: row, Err: errors.New("unknown key")}
			}
			return errors.Join(errs...)
		}
		var de *toml.DecodeError
		if errors.As(err, &de) {
			row, col := de.Position()
			return &Error{Source: "file " + path, Key: strings.Join(de.Key(), "."), Line: row, Column: col, Err: errors.New(strings.TrimPrefix(de.Error(), "toml: "))}
		}
		return &Error{Source: "file " + path, Key: "(file)", Err: err}
	}
	return nil
}

// checkDurationTypes rejects durations written as numbers ("ttl = 5"),
// which the TOML decoder would silently take as nanoseconds.
func checkDurationTypes(t reflect.Type, raw map[string]any, prefix string) *Error {
	for i := range t.NumField() {
		f := t.Field(i)
		name := f.Tag.Get("toml")
		v, ok := raw[name]
		if !ok {
			continue
		}
		if f.Type == reflect.TypeFor[Duration]() {
			if _, isStr := v.(string); !isStr {
				return &Error{Key: prefix + name, Err: fmt.Errorf("%v: write durations as strings with a unit, e.g. \"90s\", \"5m\"", v)}
			}
			continue
		}
		ft := f.Type
		if ft.Kind() == reflect.Pointer {
			ft = ft.Elem()
		}
		if sub, isMap := v.(map[string]any); isMap && ft.Kind() == reflect.Struct {
			if err := checkDurationTypes(ft, sub, prefix+name+"."); err != nil {
				return err
			}
		}
		if subs, isList := v.([]any); isList && ft.Kind() == reflect.Slice && ft.Elem().Kind() == reflect.Struct {
			for j, e := range subs { // arrays of tables: [[namespace]]
				if sub, isMap := e.(map[string]any); isMap {
					if err := checkDurationTypes(ft.Elem(), sub, fmt.Sprintf("%s%s[%d].", prefix, name, j)); err != nil {
						return err
					}
				}
			}
		}
	}
	return nil
}

// Keys lists every configuration key ("cache.ttl") with its environment
// variable name, in declaration order.
func Keys() []KeyInfo {
	var out []KeyInfo
	walk(reflect.ValueOf(&Config{}).Elem(), "", func(key string, _ reflect.Value) {
		out = append(out, KeyInfo{Key: key, Env: EnvName(key)})
	})
	return out
}

// KeyInfo names a key and its environment variable.
type KeyInfo struct{ Key, Env string }

// EnvName is the environment variable for a key.
func EnvName(key string) string {
	return "MODPROXY_" + strings.ToUpper(strings.NewReplacer(".", "_").Replace(key))
}

// ApplyEnv applies MODPROXY_* variables from lookup (os.LookupEnv in
// production) over c.
func (c *Config) ApplyEnv(lookup func(string) (string, bool)) error {
	var err error
	walk(reflect.ValueOf(c).Elem(), "", func(key string, v reflect.Value) {
		if err != nil {
			return
		}
		s, ok := lookup(EnvName(key))
		if !ok {
			return
		}
		if e := Set(v, s); e != nil {
			err = &Error{Source: "environment", Key: EnvName(key), Err: e}
		}
	})
	return err
}

// SetKey sets one key from its text form, as a flag or environment
// variable would.
func (c *Config) SetKey(key, value string) error {
	var found bool
	var err error
	walk(reflect.ValueOf(c).Elem(), "", func(k string, v reflect.Value) {
		if k == key {
			found = true
			err = Set(v, value)
		}
	})
	if !found {
		return &Error{Key: key, Err: errors.New("unknown key")}
	}
	if err != nil {
		return &Error{Key: key, Err: err}
	}
	return nil
}

func walk(v reflect.Value, prefix string, fn func(key string, v reflect.Value)) {
	t := v.Type()
	for i := range t.NumField() {
		f := t.Field(i)
		name := f.Tag.Get("toml")
		if name == "" || name == "-" {
			continue
		}
		key := prefix + name
		fv := v.Field(i)
		if fv.Kind() == reflect.Slice && fv.Type().Elem().Kind() == reflect.Struct {
			continue // tables: file only
		}
		if fv.Kind() == reflect.Struct && fv.Type() != reflect.TypeFor[Duration]() {
			walk(fv, key+".", fn)
			continue
		}
		fn(key, fv)
	}
}

// Set parses s into the field v.
func Set(v reflect.Value, s string) error {
	if u, ok := v.Addr().Interface().(interface{ UnmarshalText([]byte) error }); ok {
		return u.UnmarshalText([]byte(s))
	}
	switch v.Kind() {
	case reflect.String:
		v.SetString(s)
	case reflect.Bool:
		b, err := strconv.ParseBool(s)
		if err != nil {
			return err
		}
		v.SetBool(b)
	case reflect.Int, reflect.Int64:
		n, err := strconv.ParseInt(s, 10, 64)
		if err != nil {
			return err
		}
		v.SetInt(n)
	case reflect.Float64:
		f, err := strconv.ParseFloat(s, 64)
		if err != nil {
			return err
		}
		v.SetFloat(f)
	case reflect.Slice:
		var parts []string
		for p := range strings.SplitSeq(s, ",") {
			if p = strings.TrimSpace(p); p != "" {
				parts = append(parts, p)
			}
		}
		v.Set(reflect.ValueOf(parts))
	default:
		return fmt.Errorf("unsupported type %s", v.Type())
	}
	return nil
}

// Resolve fills Upstream, SumDB and Verify.Private from `go env` when
// they are unset; env reads go env values (package goenv's Reader).
func (c *Config) Resolve(ctx context.Context, env func(ctx context.Context, keys ...string) (map[string]string, error)) error {
	if c.Upstream != "" && c.SumDB != nil && c.Verify.Private != nil {
		return nil
	}
	m, err := env(ctx, "GOPROXY", "GOSUMDB", "GONOSUMDB", "GOPRIVATE")
	if err != nil {
		key := "upstream"
		switch {
		case c.Upstream != "" && c.SumDB == nil:
			key = "sumdb"
		case c.Upstream != "" && c.SumDB != nil:
			key = "verify.private"
		}
		return &Error{Key: key, Err: fmt.Errorf("not configured, and reading the default from the go command failed: %w", err)}
	}
	if c.Verify.Private == nil {
		p := m["GONOSUMDB"]
		if p == "" {
			p = m["GOPRIVATE"]
		}
		c.Verify.Private = []string{}
		for f := range strings.SplitSeq(p, ",") {
			if f = strings.TrimSpace(f); f != "" {
				c.Verify.Private = append(c.Verify.Private, f)
			}
		}
	}
	if c.Upstream == "" {
		c.Upstream = m["GOPROXY"]
	}
	if c.SumDB == nil {
		if s := strings.TrimSpace(m["GOSUMDB"]); s != "" {
			c.SumDB = []string{s}
		}
	}
	return nil
}

// Validate reports the first setting whose syntax is invalid, naming its
// key. It does not parse upstream lists or version ranges (app does).
func (c *Config) Validate() error {
	if _, _, err := net.SplitHostPort(c.Listen); err != nil {
		return &Error{Key: "listen", Err: fmt.Errorf("%q is not HOST:PORT", c.Listen)}
	}
	if c.CacheDir == "" {
		return &Error{Key: "cache_dir", Err: errors.New("must not be empty")}
	}
	if strings.TrimSpace(c.Upstream) == "" {
		return &Error{Key: "upstream", Err: errors.New("must not be empty (GOPROXY syntax, e.g. https://proxy.example.com,direct)")}
	}
	for _, s := range c.SumDB {
		if _, err := ParseSumDB(s); err != nil {
			return &Error{Key: "sumdb", Err: err}
		}
	}
	switch c.Log.Format {
	case "text", "json":
	default:
		return &Error{Key: "log.format", Err: fmt.Errorf("%q: want text or json", c.Log.Format)}
	}
	switch c.Log.Level {
	case "debug", "info", "warn", "error":
	default:
		return &Error{Key: "log.level", Err: fmt.Errorf("%q: want debug, info, warn or error", c.Log.Level)}
	}
	for key, d := range map[string]Duration{
		"cache.ttl": c.Cache.TTL, "cache.stale_while_revalidate": c.Cache.StaleWhileRevalidate,
		"cache.stale_if_error": c.Cache.StaleIfError, "cache.negative_ttl": c.Cache.NegativeTTL,
		"shutdown_timeout": c.ShutdownTimeout,
	} {
		if d < 0 {
			return &Error{Key: key, Err: errors.New("must not be negative")}
		}
	}
	for key, d := range map[string]Duration{"fetch.connect_timeout": c.Fetch.ConnectTimeout, "fetch.timeout": c.Fetch.Timeout} {
		if d <= 0 {
			return &Error{Key: key, Err: errors.New("must be positive")}
		}
	}
	if c.Verify.Database != "" {
		found := false
		for _, s := range c.SumDB {
			if spec, err := ParseSumDB(s); err == nil && spec.Name == c.Verify.Database {
				found = true
			}
		}
		if !found {
			return &Error{Key: "verify.database", Err: fmt.Errorf("%q is not one of the configured sumdb entries", c.Verify.Database)}
		}
	}
	if c.Verify.ScrubInterval < 0 {
		return &Error{Key: "verify.scrub_interval", Err: errors.New("must not be negative")}
	}
	if c.Verify.QuarantineMaxSize < 0 {
		return &Error{Key: "verify.quarantine_max_size", Err: errors.New("must not be negative")}
	}
	for _, p := range c.Verify.Private {
		if strings.ContainsAny(p, " \t") {
			return &Error{Key: "verify.private", Err: fmt.Errorf("pattern %q contains white space", p)}
		}
	}
	r := c.Resilience
	for key, n := range map[string]int{"resilience.max_attempts": r.MaxAttempts, "resilience.breaker_min_requests": r.BreakerMinRequests,
		"resilience.probe_failures": r.ProbeFailures, "direct.concurrency": c.Direct.Concurrency} {
		if n <= 0 {
			return &Error{Key: key, Err: errors.New("must be at least 1")}
		}
	}
	if r.BreakerFailures < 0 {
		return &Error{Key: "resilience.breaker_failures", Err: errors.New("must not be negative (deprecated: use breaker_failure_rate and breaker_min_requests)")}
	}
	if !(r.BreakerFailureRate > 0 && r.BreakerFailureRate <= 1) {
		return &Error{Key: "resilience.breaker_failure_rate", Err: fmt.Errorf("%v: want a share of the requests, more than 0 and at most 1 (e.g. 0.5)", r.BreakerFailureRate)}
	}
	for key, d := range map[string]Duration{"resilience.backoff_base": r.BackoffBase, "resilience.backoff_max": r.BackoffMax,
		"resilience.request_timeout": r.RequestTimeout, "resilience.breaker_window": r.BreakerWindow,
		"resilience.breaker_open": r.BreakerOpen, "resilience.header_timeout": r.HeaderTimeout, "direct.timeout": c.Direct.Timeout} {
		if d <= 0 {
			return &Error{Key: key, Err: errors.New("must be positive")}
		}
	}
	if r.ProbeInterval < 0 || r.HedgeDelay < 0 {
		return &Error{Key: "resilience.probe_interval", Err: errors.New("must not be negative")}
	}
	if r.ProbePath != "" && (strings.HasPrefix(r.ProbePath, "/") || strings.Contains(r.ProbePath, "..")) {
		return &Error{Key: "resilience.probe_path", Err: fmt.Errorf("%q: want a protocol path relative to the proxy base, e.g. golang.org/x/mod/@v/list", r.ProbePath)}
	}
	for i, rt := range c.Routes {
		key := fmt.Sprintf("route[%d]", i)
		if strings.TrimSpace(rt.Match) == "" {
			return &Error{Key: key + ".match", Err: errors.New("must not be empty")}
		}
	}
	for i, d := range c.Deny {
		key := fmt.Sprintf("deny[%d]", i)
		switch {
		case strings.TrimSpace(d.Match) == "":
			return &Error{Key: key + ".match", Err: errors.New("must not be empty")}
		case strings.TrimSpace(d.Reason) == "":
			return &Error{Key: key + ".reason", Err: errors.New("must not be empty: clients are told why")}
		case d.Status != 0 && d.Status != 403 && d.Status != 410:
			return &Error{Key: key + ".status", Err: fmt.Errorf("%d: want 403 or 410", d.Status)}
		}
	}
	seen := map[string]bool{}
	for i, ns := range c.Namespaces {
		key := fmt.Sprintf("namespace[%d]", i)
		if !validNamespace(ns.Name) {
			return &Error{Key: key + ".name", Err: fmt.Errorf("%q: want lower-case letters, digits and dashes (no dots, so it can't be a module host), not a reserved name", ns.Name)}
		}
		if seen[ns.Name] {
			return &Error{Key: key + ".name", Err: fmt.Errorf("%q used twice", ns.Name)}
		}
		seen[ns.Name] = true
		if ns.TTL < 0 {
			return &Error{Key: key + ".ttl", Err: errors.New("must not be negative")}
		}
		for j, rt := range ns.Routes {
			if rt.Match == "" {
				return &Error{Key: fmt.Sprintf("%s.route[%d]", key, j), Err: errors.New("match and a valid upstream list are required")}
			}
		}
		for j, d := range ns.Deny {
			if d.Match == "" || d.Reason == "" {
				return &Error{Key: fmt.Sprintf("%s.deny[%d]", key, j), Err: errors.New("match, reason and a valid version range are required")}
			}
		}
	}
	for i, h := range c.Hosted {
		key := fmt.Sprintf("hosted[%d]", i)
		if strings.TrimSpace(h.Match) == "" {
			return &Error{Key: key + ".match", Err: errors.New("must not be empty")}
		}
		if h.Namespace != "" && h.Namespace != "*" && !seen[h.Namespace] {
			return &Error{Key: key + ".namespace", Err: fmt.Errorf("%q: want \"\" (the root), \"*\" or the name of a [[namespace]]", h.Namespace)}
		}
	}
	if c.GC.Interval < 0 || c.GC.MaxIdle < 0 || c.GC.TrashRetention < 0 {
		return &Error{Key: "gc", Err: errors.New("durations must not be negative")}
	}
	if c.GC.MaxSize < 0 || c.GC.TrashMaxSize < 0 || c.GC.KeepNewest < 0 || c.GC.MinFree < 0 {
		return &Error{Key: "gc", Err: errors.New("sizes and counts must not be negative")}
	}
	if c.GC.MaxSize > 0 && c.GC.TrashMaxSize >= c.GC.MaxSize {
		return &Error{Key: "gc.trash_max_size", Err: fmt.Errorf("%d bytes is the trash's share of gc.max_size (%d bytes) and must be smaller", c.GC.TrashMaxSize, c.GC.MaxSize)}
	}
	for _, p := range c.GC.Pins {
		if err := CheckPin(p); err != nil {
			return &Error{Key: "gc.pins", Err: err}
		}
	}
	sv := c.Server
	for key, d := range map[string]Duration{"server.read_header_timeout": sv.ReadHeaderTimeout, "server.read_timeout": sv.ReadTimeout,
		"server.idle_timeout": sv.IdleTimeout, "server.send_timeout": sv.SendTimeout} {
		if d <= 0 {
			return &Error{Key: key, Err: errors.New("must be positive")}
		}
	}
	if sv.MaxHeaderBytes < 1<<10 {
		return &Error{Key: "server.max_header_bytes", Err: errors.New("must be at least 1KiB")}
	}
	for key, n := range map[string]int{"server.max_connections": sv.MaxConnections, "admin.max_connections": c.Admin.MaxConnections} {
		if n <= 0 {
			return &Error{Key: key, Err: errors.New("must be at least 1")}
		}
	}
	if !c.Admin.Off() && c.Admin.Listen != AdminAuto {
		host, _, err := net.SplitHostPort(c.Admin.Listen)
		if err != nil {
			return &Error{Key: "admin.listen", Err: fmt.Errorf("%q is not HOST:PORT, %q or %q", c.Admin.Listen, AdminAuto, "off")}
		}
		if !isLoopback(host) && c.Admin.Token == "" {
			return &Error{Key: "admin.token", Err: fmt.Errorf("required when admin.listen (%s) is not a loopback address", c.Admin.Listen)}
		}
	}
	switch c.Storage.Type {
	case "disk":
	case "s3":
		if c.Storage.S3.Endpoint == "" || c.Storage.S3.Bucket == "" {
			return &Error{Key: "storage.s3", Err: errors.New("endpoint and bucket are required with storage.type = \"s3\"")}
		}
	default:
		return &Error{Key: "storage.type", Err: fmt.Errorf("%q: want disk or s3", c.Storage.Type)}
	}
	if c.Cluster.Redis != "" {
		if _, _, err := net.SplitHostPort(c.Cluster.Redis); err != nil {
			return &Error{Key: "cluster.redis", Err: fmt.Errorf("%q is not HOST:PORT", c.Cluster.Redis)}
		}
	}
	if c.Audit.MaxSize <= 0 || c.Audit.MaxFiles <= 0 || c.Audit.MaxAge < 0 {
		return &Error{Key: "audit", Err: errors.New("max_size and max_files must be positive")}
	}
	if c.Fetch.MaxZipSize <= 0 {
		return &Error{Key: "fetch.max_zip_size", Err: errors.New("must be positive")}
	}
	if err := c.validateDL(); err != nil {
		return err
	}
	if err := c.validatePolicies(); err != nil {
		return err
	}
	if c.Vuln.Refresh <= 0 {
		return &Error{Key: "vuln.refresh", Err: errors.New("must be positive")}
	}
	if s := c.Vuln.Source; s != "" && !strings.HasPrefix(s, "http://") && !strings.HasPrefix(s, "https://") {
		return &Error{Key: "vuln.source", Err: fmt.Errorf("%q: want the http(s) URL of a Go vulnerability database", s)}
	}
	return c.validateAuth()
}

// validateDL checks [dl].
func (c *Config) validateDL() error {
	if src := c.DL.Source; src != "" {
		u, err := url.Parse(src)
		if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" || u.RawQuery != "" || u.Fragment != "" {
			return &Error{Key: "dl.source", Err: fmt.Errorf("%q: want the distribution site's http(s) base URL, e.g. https://dl.example.com/dl", src)}
		}
	}
	if c.DL.TTL < 0 {
		return &Error{Key: "dl.ttl", Err: errors.New("must not be negative (0: cache.ttl)")}
	}
	if c.DL.MaxSize <= 0 {
		return &Error{Key: "dl.max_size", Err: errors.New("must be positive")}
	}
	if c.DL.MaxTotal < 0 || (c.DL.MaxTotal > 0 && c.DL.MaxTotal < c.DL.MaxSize) {
		return &Error{Key: "dl.max_total", Err: fmt.Errorf("%d bytes: want 0 (unbounded) or at least dl.max_size (%d bytes)", c.DL.MaxTotal, c.DL.MaxSize)}
	}
	if c.DL.MaxFetches <= 0 {
		return &Error{Key: "dl.max_fetches", Err: errors.New("must be positive")}
	}
	return nil
}

// validateAuth checks [tls] and [auth]; it refuses an unauthenticated
// listener beyond loopback unless auth.allow_anonymous says so.
func (c *Config) validateAuth() error {
	if (c.TLS.CertFile == "") != (c.TLS.KeyFile == "") {
		return &Error{Key: "tls.cert_file", Err: errors.New("tls.cert_file and tls.key_file go together")}
	}
	if c.TLS.ClientCAFile != "" && c.TLS.CertFile == "" {
		return &Error{Key: "tls.client_ca_file", Err: errors.New("requires tls.cert_file and tls.key_file")}
	}
	switch c.Auth.Mode {
	case "off":
		host, _, _ := net.SplitHostPort(c.Listen)
		if !isLoopback(host) && !c.Auth.AllowAnonymous {
			return &Error{Key: "auth.mode", Err: fmt.Errorf("listen (%s) is not a loopback address and auth.mode is \"off\": anyone who reaches the port could read every cached module, private ones included; set auth.mode = \"required\" (with tokens: modproxy token create), or auth.allow_anonymous = true to serve without authentication on purpose", c.Listen)}
		}
	case "required":
	default:
		return &Error{Key: "auth.mode", Err: fmt.Errorf("%q: want off or required", c.Auth.Mode)}
	}
	for i, m := range c.Auth.Certificates {
		if m.Name == "" || len(m.Subjects) == 0 || len(m.Scopes) == 0 {
			return &Error{Key: fmt.Sprintf("auth.certificate[%d]", i), Err: errors.New("name, subjects and scopes are required")}
		}
	}
	return nil
}

func validNamespace(n string) bool {
	switch n {
	case "", "sumdb", "cached-only", "healthz", "readyz", "metrics", "dl", "api", "sumdb-hosted", "vuln":
		return false
	}
	for _, r := range n {
		if !(r >= 'a' && r <= 'z' || r >= '0' && r <= '9' || r == '-') {
			return false
		}
	}
	return true
}

func isLoopback(host string) bool {
	if host == "localhost" {
		return true
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback()
}

// SumDBSpec is a parsed GOSUMDB-style checksum database setting.
type SumDBSpec struct {
	Name string // e.g. sum.example.com
	Key  string // verifier key, may be empty
	URL  string // may be empty: fetch through the upstream proxies
}

// ParseSumDB parses "NAME", "NAME+KEY..." or "NAME+KEY URL". "off" is not
// a database; callers drop it before.
func ParseSumDB(s string) (SumDBSpec, error) {
	f := strings.Fields(s)
	if len(f) == 0 || len(f) > 2 {
		return SumDBSpec{}, fmt.Errorf("%q: want NAME[+KEY] [URL]", s)
	}
	var spec SumDBSpec
	spec.Name, _, _ = strings.Cut(f[0], "+")
	if strings.Contains(f[0], "+") {
		spec.Key = f[0]
	}
	if spec.Name == "" || strings.ContainsAny(spec.Name, "/\\ ") {
		return SumDBSpec{}, fmt.Errorf("%q: invalid database name", s)
	}
	if len(f) == 2 {
		spec.URL = strings.TrimRight(f[1], "/")
		if !strings.HasPrefix(spec.URL, "https://") && !strings.HasPrefix(spec.URL, "http://") {
			return SumDBSpec{}, fmt.Errorf("%q: URL must be http or https", s)
		}
	}
	return spec, nil
}

// Duration is a time.Duration written as "90s", "5m", "24h".
type Duration time.Duration

// UnmarshalText implements encoding.TextUnmarshaler.
func (d *Duration) UnmarshalText(b []byte) error {
	v, err := time.ParseDuration(string(b))
	if err != nil {
		return fmt.Errorf("%q is not a duration (e.g. 90s, 5m, 24h)", b)
	}
	*d = Duration(v)
	return nil
}

// MarshalText implements encoding.TextMarshaler.
func (d Duration) MarshalText() ([]byte, error) { return []byte(time.Duration(d).String()), nil }

// ByteSize is a size written as "500MiB", "2GiB", "1048576".
type ByteSize int64

// UnmarshalText implements encoding.TextUnmarshaler.
func (b *ByteSize) UnmarshalText(t []byte) error {
	s := strings.TrimSpace(string(t))
	units := []struct {
		suffix string
		mult   int64
	}{{"KiB", 1 << 10}, {"MiB", 1 << 20}, {"GiB", 1 << 30}, {"TiB", 1 << 40}, {"KB", 1e3}, {"MB", 1e6}, {"GB", 1e9}, {"TB", 1e12}, {"B", 1}}
	mult := int64(1)
	for _, u := range units {
		if n, ok := strings.CutSuffix(s, u.suffix); ok {
			s, mult = strings.TrimSpace(n), u.mult
			break
		}
	}
	n, err := strconv.ParseInt(s, 10, 64)
	if err != nil || n < 0 || n > (1<<62)/mult {
		return fmt.Errorf("%q is not a size (e.g. 500MiB, 2GiB)", t)
	}
	*b = ByteSize(n * mult)
	return nil
}

// MarshalText implements encoding.TextMarshaler.
func (b ByteSize) MarshalText() ([]byte, error) { return []byte(strconv.FormatInt(int64(b), 10)), nil }
