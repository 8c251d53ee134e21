package cluster

import (
	"net"
	"net/http"
	"net/http/httputil"
	"net/url"
	"sync/atomic"
	"time"
)

// balancer is the load balancer in front of the tend servers: round robin over the servers
// that answer, the client's address passed on in X-Forwarded-For (which the servers believe
// because TEND_TRUSTED_PROXIES names the balancer), as an operator's nginx or cloud load
// balancer would do.
type balancer struct {
	backends []*url.URL
	proxies  []*httputil.ReverseProxy
	next     atomic.Uint64
	up       []atomic.Bool
	stop     chan struct{}
	srv      *http.Server
	ln       net.Listener
}

func newBalancer(addr string, backends []string) (*balancer, error) {
	b := &balancer{}
	for _, raw := range backends {
		u, err := url.Parse(raw)
		if err != nil {
			return nil, err
		}
		b.backends = append(b.backends, u)
		rp := &httputil.ReverseProxy{
			Rewrite: func(r *httputil.ProxyRequest) {
				r.SetURL(u)
				r.Out.Host = r.In.Host
				// SetXForwarded replaces any X-Forwarded-For the client sent: a client cannot
				// choose the address the servers rate-limit it by.
				r.SetXForwarded()
			},
			ErrorHandler: func(w http.ResponseWriter, r *http.Request, err error) {
				w.Header().Set("Content-Type", "application/json")
				http.Error(w, `{"error":"no tend server answered"}`, http.StatusBadGateway)
			},
			Transport: &http.Transport{MaxIdleConnsPerHost: 256, IdleConnTimeout: 90 * time.Second,
				DialContext: (&net.Dialer{Timeout: 2 * time.Second}).DialContext},
		}
		b.proxies = append(b.proxies, rp)
	}
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return nil, err
	}
	b.up = make([]atomic.Bool, len(b.backends))
	for k := range b.up {
		b.up[k].Store(true)
	}
	b.stop = make(chan struct{})
	go b.check()
	b.ln = ln
	b.srv = &http.Server{Handler: b, ReadHeaderTimeout: 10 * time.Second}
	go func() { _ = b.srv.Serve(ln) }()
	return b, nil
}

// ServeHTTP sends the request to the next server that was up at the last health check; only
// when none was is it answered 502.
func (b *balancer) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	n := len(b.proxies)
	start := int(b.next.Add(1) % uint64(n))
	for i := range n {
		k := (start + i) % n
		if b.up[k].Load() || i == n-1 {
			b.proxies[k].ServeHTTP(w, r)
			return
		}
	}
}

// check marks each server up or down by whether its port accepts a connection, every 250 ms,
// so that a killed server stops getting requests within a quarter of a second.
func (b *balancer) check() {
	t := time.NewTicker(250 * time.Millisecond)
	defer t.Stop()
	for {
		for k, u := range b.backends {
			c, err := net.DialTimeout("tcp", u.Host, 200*time.Millisecond)
			if err == nil {
				c.Close()
			}
			b.up[k].Store(err == nil)
		}
		select {
		case <-b.stop:
			return
		case <-t.C:
		}
	}
}

func (b *balancer) close() {
	close(b.stop)
	_ = b.srv.Close()
}
