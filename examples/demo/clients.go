package main

import (
	"context"
	"fmt"
	"io"
	"math/rand/v2"
	"net/http"
	"sync"
	"sync/atomic"
	"time"
)

// A client sends requests at a fixed rate through the simulated proxy.
type client struct {
	name     string
	behavior string
	rate     float64       // requests per second it sends
	workers  int           // goroutines sending them, each its share in turn; 0: one
	delay    time.Duration // when it starts, from the start of the run
	// headers sets the request's forwarding headers for its i-th request:
	// what the client forged, plus the address the trusted proxy appended.
	headers func(h http.Header, i int)
	// bounded reports whether the client's admissions must stay within
	// Burst + Rate×T (every client but the sprayer, whose addresses are
	// all different clients).
	bounded bool

	sent, admitted, denied, failed atomic.Int64
	first, last                    atomic.Int64 // unix nanos: first request sent, last response received
	// cellsBefore and cellsAfter are the instances' decisions on the cells
	// (cellDecisions) when the client started and when it stopped.
	cellsBefore, cellsAfter atomic.Uint64
}

func newClients(cfg config) []*client {
	addrs, perSecond := cfg.spray()
	forge := func() string { return fmt.Sprintf("203.0.113.%d", rand.IntN(254)+1) }
	return []*client{
		{name: "polite", behavior: "half its limit", rate: cfg.rate / 2, bounded: true,
			headers: func(h http.Header, _ int) { h.Set("X-Forwarded-For", "198.51.100.10") }},
		{name: "newcomer", behavior: "half its limit, joining mid-spray", rate: cfg.rate / 2, bounded: true, delay: cfg.duration / 2,
			headers: func(h http.Header, _ int) { h.Set("X-Forwarded-For", "198.51.100.40") }},
		{name: "greedy", behavior: "10× its limit", rate: cfg.rate * 10, bounded: true,
			headers: func(h http.Header, _ int) { h.Set("X-Forwarded-For", "198.51.100.20") }},
		{name: "spoofer", behavior: "10×, forging X-Forwarded-For", rate: cfg.rate * 10, bounded: true,
			headers: func(h http.Header, _ int) {
				h.Set("X-Forwarded-For", forge()+", "+forge()+", 198.51.100.30")
				h.Set("X-Real-IP", forge())
				h.Set("True-Client-IP", forge())
				h.Set("Forwarded", "for="+forge())
			}},
		{name: "sprayer", behavior: fmt.Sprintf("rotating %d addresses, %.4g/s", addrs, perSecond), rate: perSecond,
			workers: 8, // so that one slow response does not slow the spray (a ticker drops the ticks it misses)
			headers: func(h http.Header, i int) {
				i %= addrs
				h.Set("X-Forwarded-For", fmt.Sprintf("10.%d.%d.%d", i>>16&0xff, i>>8&0xff, i&0xff))
			}},
	}
}

// drive sends requests until ctx is done, spreading them round-robin over
// the instances (as a load balancer would).
func (c *client) drive(ctx context.Context, httpc *http.Client, instances []*instance) {
	if c.delay > 0 {
		select {
		case <-ctx.Done():
			return
		case <-time.After(c.delay):
		}
	}
	c.cellsBefore.Store(cellDecisions(instances))
	defer func() { c.cellsAfter.Store(cellDecisions(instances)) }()
	workers := max(c.workers, 1)
	period := time.Duration(float64(time.Second) / c.rate)
	var wg sync.WaitGroup
	for w := range workers {
		wg.Go(func() { c.send(ctx, httpc, instances, w, workers, time.Duration(w)*period) })
	}
	wg.Wait()
}

// send sends the client's requests w, w + workers, w + 2×workers… one
// every workers/rate, the first after offset.
func (c *client) send(ctx context.Context, httpc *http.Client, instances []*instance, w, workers int, offset time.Duration) {
	select {
	case <-ctx.Done():
		return
	case <-time.After(offset):
	}
	tick := time.NewTicker(time.Duration(float64(time.Second) * float64(workers) / c.rate))
	defer tick.Stop()
	for i := w; ; i += workers {
		select {
		case <-ctx.Done():
			return
		case <-tick.C:
		}
		req, err := http.NewRequestWithContext(ctx, http.MethodGet, "http://"+instances[i%len(instances)].addr+"/", nil)
		if err != nil {
			c.failed.Add(1)
			continue
		}
		c.headers(req.Header, i)
		c.sent.Add(1)
		c.first.CompareAndSwap(0, time.Now().UnixNano())
		resp, err := httpc.Do(req)
		if err != nil {
			if ctx.Err() == nil {
				c.failed.Add(1)
			} else {
				c.sent.Add(-1) // cut off by the end of the run: not a result
			}
			continue
		}
		io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		c.last.Store(time.Now().UnixNano())
		switch resp.StatusCode {
		case http.StatusOK:
			c.admitted.Add(1)
		case http.StatusTooManyRequests:
			c.denied.Add(1)
		default:
			c.failed.Add(1)
		}
	}
}
