// Package rediscoord implements coord.Coordinator on Redis
// (github.com/redis/go-redis/v9): locks are SET NX PX with a random token,
// renewed by a Lua compare-and-expire at a third of the TTL and released
// by a compare-and-delete; broadcasts use Pub/Sub on one channel.
//
// The coordinator owns the renewal goroutines of its locks: Release stops
// one and waits for it, Close stops and waits for all of them.
package rediscoord

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"strconv"
	"sync"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/modproxy/modproxy/internal/background"
	"github.com/modproxy/modproxy/internal/coord"
)

// Options configures a Coordinator.
type Options struct {
	Addr     string // host:port
	Password string
	DB       int
	Prefix   string // key and channel prefix; default "modproxy:"
	Timeout  time.Duration
	Logger   *slog.Logger
}

// Coordinator is a coord.Coordinator on Redis. Safe for concurrent use.
type Coordinator struct {
	rdb    *redis.Client
	prefix string
	log    *slog.Logger
	bg     *background.Group // lock renewals
}

// New returns a Coordinator; it does not contact Redis (see Ping).
func New(opts Options) *Coordinator {
	if opts.Prefix == "" {
		opts.Prefix = "modproxy:"
	}
	if opts.Timeout <= 0 {
		opts.Timeout = 2 * time.Second
	}
	if opts.Logger == nil {
		opts.Logger = slog.New(slog.DiscardHandler)
	}
	rdb := redis.NewClient(&redis.Options{
		Addr: opts.Addr, Password: opts.Password, DB: opts.DB,
		DialTimeout: opts.Timeout, ReadTimeout: opts.Timeout, WriteTimeout: opts.Timeout,
		MaxRetries: 1, ContextTimeoutEnabled: true,
	})
	return &Coordinator{rdb: rdb, prefix: opts.Prefix, log: opts.Logger, bg: background.New(opts.Logger)}
}

// Close stops renewing the locks still held (their leases then expire
// in Redis), waits for the renewals to end and closes the connections.
// Subscriptions must have ended before (their contexts done).
func (c *Coordinator) Close() error {
	c.bg.Close()
	return c.rdb.Close()
}

func unavailable(err error) error { return fmt.Errorf("%w: %v", coord.ErrUnavailable, err) }

// Ping implements coord.Coordinator.
func (c *Coordinator) Ping(ctx context.Context) error {
	if err := c.rdb.Ping(ctx).Err(); err != nil {
		return unavailable(err)
	}
	return nil
}

var (
	renewScript   = redis.NewScript(`if redis.call("get", KEYS[1]) == ARGV[1] then return redis.call("pexpire", KEYS[1], ARGV[2]) else return 0 end`)
	releaseScript = redis.NewScript(`if redis.call("get", KEYS[1]) == ARGV[1] then return redis.call("del", KEYS[1]) else return 0 end`)
)

type lock struct {
	c       *Coordinator
	key     string
	token   string
	stop    chan struct{}
	renewed chan struct{} // closed when the renewal goroutine has returned
	lost    chan struct{}
	once    sync.Once
	loseMu  sync.Once
}

// TryLock implements coord.Coordinator.
func (c *Coordinator) TryLock(ctx context.Context, name string, ttl time.Duration) (coord.Lock, bool, error) {
	var b [16]byte
	_, _ = rand.Read(b[:])
	l := &lock{c: c, key: c.prefix + "lock:" + name, token: hex.EncodeToString(b[:]),
		stop: make(chan struct{}), renewed: make(chan struct{}), lost: make(chan struct{})}
	ok, err := c.rdb.SetNX(ctx, l.key, l.token, ttl).Result()
	if err != nil {
		return nil, false, unavailable(err)
	}
	if !ok {
		return nil, false, nil
	}
	if !c.bg.Go(context.Background(), "lock renewal "+l.key, func(ctx context.Context) {
		defer close(l.renewed)
		l.renew(ctx, ttl)
	}) {
		// Closed meanwhile: give the lock back rather than hold it unrenewed.
		_ = releaseScript.Run(context.WithoutCancel(ctx), c.rdb, []string{l.key}, l.token).Err()
		return nil, false, unavailable(errors.New("coordinator closed"))
	}
	return l, true, nil
}

// renew extends the lease every third of its TTL until the lock is
// released or ctx (the coordinator) is done.
func (l *lock) renew(ctx context.Context, ttl time.Duration) {
	t := time.NewTicker(ttl / 3)
	defer t.Stop()
	for {
		select {
		case <-l.stop:
			return
		case <-ctx.Done():
			return
		case <-t.C:
		}
		rctx, cancel := context.WithTimeout(ctx, ttl/3)
		n, err := renewScript.Run(rctx, l.c.rdb, []string{l.key}, l.token, ttl.Milliseconds()).Int()
		cancel()
		if ctx.Err() != nil {
			return // closing: not a lost lease
		}
		if err != nil || n == 0 {
			l.c.log.Warn("lost a coordination lock lease", "lock", l.key, "err", err)
			l.loseMu.Do(func() { close(l.lost) })
			return
		}
	}
}

func (l *lock) Lost() <-chan struct{} { return l.lost }

func (l *lock) Release(ctx context.Context) error {
	var err error
	l.once.Do(func() {
		close(l.stop)
		<-l.renewed
		if e := releaseScript.Run(ctx, l.c.rdb, []string{l.key}, l.token).Err(); e != nil && !errors.Is(e, redis.Nil) {
			err = unavailable(e)
		}
	})
	return err
}

// Publish implements coord.Coordinator.
func (c *Coordinator) Publish(ctx context.Context, msg string) error {
	if err := c.rdb.Publish(ctx, c.prefix+"events", msg).Err(); err != nil {
		return unavailable(err)
	}
	return nil
}

// Subscribe implements coord.Coordinator: it blocks until ctx is done.
func (c *Coordinator) Subscribe(ctx context.Context, fn func(msg string)) {
	for ctx.Err() == nil {
		c.receive(ctx, fn)
		select {
		case <-ctx.Done():
		case <-time.After(time.Second): // reconnect
		}
	}
}

// receive delivers messages of one subscription until it breaks or ctx
// is done.
func (c *Coordinator) receive(ctx context.Context, fn func(msg string)) {
	ps := c.rdb.Subscribe(ctx, c.prefix+"events")
	defer ps.Close()
	ch := ps.Channel(redis.WithChannelHealthCheckInterval(5 * time.Second))
	for {
		select {
		case <-ctx.Done():
			return
		case m, ok := <-ch:
			if !ok {
				return
			}
			fn(m.Payload)
		}
	}
}

var maxScript = redis.NewScript(`
for i = 1, #ARGV, 3 do
  local cur = redis.call("hget", KEYS[1], ARGV[i])
  if (not cur) or tonumber(cur) < tonumber(ARGV[i+1]) then redis.call("hset", KEYS[1], ARGV[i], ARGV[i+1]) end
  redis.call("hincrby", KEYS[2], ARGV[i], ARGV[i+2])
end
return 0`)

// PushAccess implements coord.Coordinator.
func (c *Coordinator) PushAccess(ctx context.Context, stats map[string]coord.Access) error {
	args := make([]any, 0, 3*min(len(stats), 1000))
	flush := func() error {
		if len(args) == 0 {
			return nil
		}
		err := maxScript.Run(ctx, c.rdb, []string{c.prefix + "access:last", c.prefix + "access:hits"}, args...).Err()
		args = args[:0]
		if err != nil && !errors.Is(err, redis.Nil) {
			return unavailable(err)
		}
		return nil
	}
	for k, a := range stats {
		args = append(args, k, a.Last.UnixNano(), a.Hits)
		if len(args) >= 3000 {
			if err := flush(); err != nil {
				return err
			}
		}
	}
	return flush()
}

// PullAccess implements coord.Coordinator.
func (c *Coordinator) PullAccess(ctx context.Context) (map[string]coord.Access, error) {
	last, err := c.rdb.HGetAll(ctx, c.prefix+"access:last").Result()
	if err != nil {
		return nil, unavailable(err)
	}
	hits, err := c.rdb.HGetAll(ctx, c.prefix+"access:hits").Result()
	if err != nil {
		return nil, unavailable(err)
	}
	out := make(map[string]coord.Access, len(last))
	for k, v := range last {
		var a coord.Access
		if n, err := strconv.ParseInt(v, 10, 64); err == nil {
			a.Last = time.Unix(0, n)
		}
		if h, err := strconv.ParseInt(hits[k], 10, 64); err == nil {
			a.Hits = h
		}
		out[k] = a
	}
	return out, nil
}
