package codepush

import (
	"net"
	"net/http"
	"net/netip"
	"regexp"
	"strings"
	"sync"
	"time"
)

// forwardedHostRE is a host[:port] as a proxy puts it in X-Forwarded-Host:
// a DNS name or IPv4 address, or a bracketed IPv6 address.
var forwardedHostRE = regexp.MustCompile(`^([A-Za-z0-9]([A-Za-z0-9-]*[A-Za-z0-9])?(\.[A-Za-z0-9]([A-Za-z0-9-]*[A-Za-z0-9])?)*|\[[0-9A-Fa-f:.]+\])(:[0-9]{1,5})?$`)

// remoteAddr is the address the request's connection comes from.
func remoteAddr(r *http.Request) (netip.Addr, bool) {
	ap, err := netip.ParseAddrPort(r.RemoteAddr)
	if err != nil {
		return netip.Addr{}, false
	}
	return ap.Addr().Unmap(), true
}

func (s *Service) trusted(a netip.Addr) bool {
	for _, p := range s.cfg.TrustedProxies {
		if p.Contains(a) {
			return true
		}
	}
	return false
}

// lastValue is the last comma-separated value of a header: the one the
// nearest proxy added (proxies append, and the client controls the rest).
func lastValue(h http.Header, name string) string {
	vs := h.Values(name)
	if len(vs) == 0 {
		return ""
	}
	v := vs[len(vs)-1]
	if i := strings.LastIndexByte(v, ','); i >= 0 {
		v = v[i+1:]
	}
	return strings.TrimSpace(v)
}

// baseURL is the scheme and host of the URLs this server hands out
// (package downloads). In order: Config.PublicURL; X-Forwarded-Proto and
// X-Forwarded-Host when the connection comes from one of
// Config.TrustedProxies; else the local address the connection was accepted
// on. The Host header is never used: anyone can send any Host, and a
// download URL pointing elsewhere would hand devices someone else's code.
func (s *Service) baseURL(r *http.Request) string {
	if s.cfg.PublicURL != "" {
		return s.cfg.PublicURL
	}
	scheme := "http"
	if r.TLS != nil {
		scheme = "https"
	}
	if a, ok := remoteAddr(r); ok && s.trusted(a) {
		if host := lastValue(r.Header, "X-Forwarded-Host"); host != "" && forwardedHostRE.MatchString(host) {
			switch p := strings.ToLower(lastValue(r.Header, "X-Forwarded-Proto")); p {
			case "http", "https":
				scheme = p
			}
			return scheme + "://" + host
		}
	}
	if la, ok := r.Context().Value(http.LocalAddrContextKey).(net.Addr); ok {
		if ap, err := netip.ParseAddrPort(la.String()); err == nil {
			return scheme + "://" + netip.AddrPortFrom(ap.Addr().Unmap(), ap.Port()).String()
		}
	}
	if s.cfg.ListenAddr != "" {
		return scheme + "://" + s.cfg.ListenAddr
	}
	return scheme + "://127.0.0.1"
}

// clientAddr is the address a request comes from: the connection's peer, or
// when that is a trusted proxy, the nearest address in X-Forwarded-For that
// is not one.
func (s *Service) clientAddr(r *http.Request) (netip.Addr, bool) {
	a, ok := remoteAddr(r)
	if !ok || !s.trusted(a) {
		return a, ok
	}
	hops := strings.Split(strings.Join(r.Header.Values("X-Forwarded-For"), ","), ",")
	for i := len(hops) - 1; i >= 0; i-- {
		h, err := netip.ParseAddr(strings.TrimSpace(hops[i]))
		if err != nil {
			return a, true // a garbled chain: count it against the proxy
		}
		h = h.Unmap()
		if !s.trusted(h) {
			return h, true
		}
	}
	return a, true
}

// addrLimiter is a token bucket per client address: rate tokens a second up
// to burst. IPv6 addresses share a bucket per /64, the smallest block one
// subscriber is given, so that a forger cannot draw fresh buckets from its
// own prefix.
type addrLimiter struct {
	rate, burst float64
	now         func() time.Time

	mu      sync.Mutex
	buckets map[netip.Addr]*tokenBucket
}

type tokenBucket struct {
	tokens float64
	at     time.Time
}

func newAddrLimiter(perMinute, burst int, now func() time.Time) *addrLimiter {
	return &addrLimiter{rate: float64(perMinute) / 60, burst: float64(burst), now: now, buckets: map[netip.Addr]*tokenBucket{}}
}

func limiterKey(a netip.Addr) netip.Addr {
	if a.Is6() {
		p, err := a.Prefix(64)
		if err == nil {
			return p.Addr()
		}
	}
	return a
}

// allow takes a token for a, or says how long until one is available.
func (l *addrLimiter) allow(a netip.Addr) (bool, time.Duration) {
	now := l.now()
	k := limiterKey(a)
	l.mu.Lock()
	defer l.mu.Unlock()
	b, ok := l.buckets[k]
	if !ok {
		if len(l.buckets) >= 100_000 {
			l.prune(now)
		}
		b = &tokenBucket{tokens: l.burst, at: now}
		l.buckets[k] = b
	}
	if el := now.Sub(b.at).Seconds(); el > 0 {
		b.tokens = min(l.burst, b.tokens+el*l.rate)
	}
	b.at = now
	if b.tokens >= 1 {
		b.tokens--
		return true, 0
	}
	wait := time.Duration((1 - b.tokens) / l.rate * float64(time.Second))
	return false, max(wait, time.Second)
}

// prune forgets buckets that have refilled: forgetting them changes nothing.
func (l *addrLimiter) prune(now time.Time) {
	full := time.Duration(l.burst / l.rate * float64(time.Second))
	for k, b := range l.buckets {
		if now.Sub(b.at) >= full {
			delete(l.buckets, k)
		}
	}
}
