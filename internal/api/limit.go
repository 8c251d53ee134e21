package api

import (
	"sync"
	"time"

	"golang.org/x/time/rate"
)

// Limiter is a per-client token bucket for the public endpoints.
type Limiter struct {
	Rate  rate.Limit
	Burst int

	mu      sync.Mutex
	clients map[string]*client
	swept   time.Time
}

type client struct {
	l    *rate.Limiter
	seen time.Time
}

// NewLimiter allows perSecond requests per client address with the given burst.
func NewLimiter(perSecond float64, burst int) *Limiter {
	return &Limiter{Rate: rate.Limit(perSecond), Burst: burst, clients: map[string]*client{}}
}

// Allow reports whether a request from addr may proceed.
func (l *Limiter) Allow(addr string) bool {
	now := time.Now()
	l.mu.Lock()
	defer l.mu.Unlock()
	if now.Sub(l.swept) > time.Minute {
		for k, c := range l.clients {
			if now.Sub(c.seen) > 5*time.Minute {
				delete(l.clients, k)
			}
		}
		l.swept = now
	}
	c, ok := l.clients[addr]
	if !ok {
		c = &client{l: rate.NewLimiter(l.Rate, l.Burst)}
		l.clients[addr] = c
	}
	c.seen = now
	return c.l.Allow()
}
