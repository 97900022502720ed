package proxy

import (
	"container/list"
	"sync"
	"time"
)

// policyEventInterval is how long a policy block, once sent to the event
// sink, is not sent again for the same namespace, module@version and
// reason: a fleet of builds retrying a refused zip must not fill the
// webhook queues and push out other events. Logs and metrics still see
// every refusal.
const policyEventInterval = 10 * time.Minute

// policyEventKeys bounds the blocks remembered; the least recently sent
// is forgotten first (it may then be sent again within the interval).
const policyEventKeys = 4096

// eventLimiter lets one event per key through per interval, remembering
// at most size keys (least recently sent dropped first). The zero value
// is not usable; see newEventLimiter. Safe for concurrent use.
type eventLimiter struct {
	interval time.Duration
	size     int

	mu    sync.Mutex
	order *list.List               // of *limitEntry, most recently sent first
	byKey map[string]*list.Element // key -> its element of order
}

type limitEntry struct {
	key  string
	sent time.Time
}

func newEventLimiter(interval time.Duration, size int) *eventLimiter {
	return &eventLimiter{interval: interval, size: size, order: list.New(), byKey: map[string]*list.Element{}}
}

// allow reports whether an event for key may be sent at now (and, if so,
// records it as sent).
func (l *eventLimiter) allow(key string, now time.Time) bool {
	l.mu.Lock()
	defer l.mu.Unlock()
	if el, ok := l.byKey[key]; ok {
		e := el.Value.(*limitEntry)
		if now.Sub(e.sent) < l.interval && !now.Before(e.sent) {
			return false
		}
		e.sent = now
		l.order.MoveToFront(el)
		return true
	}
	if l.order.Len() >= l.size {
		last := l.order.Back()
		delete(l.byKey, last.Value.(*limitEntry).key)
		l.order.Remove(last)
	}
	l.byKey[key] = l.order.PushFront(&limitEntry{key: key, sent: now})
	return true
}
