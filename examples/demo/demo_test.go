package main

import (
	"bytes"
	"context"
	"errors"
	"net"
	"regexp"
	"strings"
	"sync"
	"testing"
	"testing/synctest"
	"time"

	"github.com/alicebob/miniredis/v2"
	"github.com/redis/go-redis/v9"
)

// memNet is an in-memory network: every connection is a net.Pipe, so the
// whole demo runs inside a synctest bubble, its ten seconds in fake time.
// Connections come from 127.0.0.1, the demo's trusted proxy.
type memNet struct {
	mu     sync.Mutex
	ln     map[string]*memListener
	nextID int
}

func newMemNet() *memNet { return &memNet{ln: map[string]*memListener{}} }

func (n *memNet) Listen() (net.Listener, error) {
	n.mu.Lock()
	defer n.mu.Unlock()
	n.nextID++
	l := &memListener{addr: &net.TCPAddr{IP: net.IPv4(10, 99, 0, byte(n.nextID)), Port: 80}, conns: make(chan net.Conn), done: make(chan struct{})}
	n.ln[l.addr.String()] = l
	return l, nil
}

func (n *memNet) DialContext(ctx context.Context, _, addr string) (net.Conn, error) {
	n.mu.Lock()
	l := n.ln[addr]
	n.mu.Unlock()
	if l == nil {
		return nil, errors.New("memnet: connection refused")
	}
	server, client := net.Pipe()
	peer := &net.TCPAddr{IP: net.IPv4(127, 0, 0, 1), Port: 40000}
	select {
	case l.conns <- addrConn{server, l.addr, peer}:
		return addrConn{client, peer, l.addr}, nil
	case <-l.done:
		return nil, errors.New("memnet: listener closed")
	case <-ctx.Done():
		return nil, ctx.Err()
	}
}

type memListener struct {
	addr  *net.TCPAddr
	conns chan net.Conn
	done  chan struct{}
	once  sync.Once
}

func (l *memListener) Accept() (net.Conn, error) {
	select {
	case c := <-l.conns:
		return c, nil
	case <-l.done:
		return nil, net.ErrClosed
	}
}

func (l *memListener) Close() error {
	l.once.Do(func() { close(l.done) })
	return nil
}

func (l *memListener) Addr() net.Addr { return l.addr }

// addrConn gives a pipe end TCP addresses.
type addrConn struct {
	net.Conn
	local, remote net.Addr
}

func (c addrConn) LocalAddr() net.Addr  { return c.local }
func (c addrConn) RemoteAddr() net.Addr { return c.remote }

// TestDemo runs the default demo. Its spray keeps the table full of
// buckets that cannot be retired, so that the keys beyond the cap, the
// sprayer's and the polite clients', are decided on the cells: the test
// checks that they were, substantially, and that the polite clients were
// never denied there, which one shared overflow cell would not do.
func TestDemo(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		var out bytes.Buffer
		cfg := defaultConfig()
		res, err := run(context.Background(), cfg, &out, newMemNet())
		t.Log("\n" + out.String())
		if err != nil {
			t.Fatalf("run: %v", err)
		}
		if !res.ok {
			t.Error("a verdict failed; want every verdict to pass")
		}
		checkOutput(t, out.String(), cfg)
		checkBounds(t, res, cfg)

		// The spray reached the cells: of the sprayer's 1,000 requests a
		// second, those for its 50 addresses beyond the cap of 100 (a third)
		// once the table has filled.
		sprayer, newcomer := byName(t, res, "sprayer"), byName(t, res, "newcomer")
		if sent := uint64(sprayer.sent.Load()); res.cells < sent/5 {
			t.Errorf("%d decisions on the cells, want at least a fifth of the sprayer's %d requests", res.cells, sent)
		}
		// And it was still reaching them while the newcomer ran.
		if during := newcomer.cellsAfter.Load() - newcomer.cellsBefore.Load(); during < res.cells/4 {
			t.Errorf("%d decisions on the cells while the newcomer ran (of %d), want at least a quarter", during, res.cells)
		}
	})
}

// checkBounds checks the polite clients were never denied and every
// bounded client was held within Burst + Rate×T, T from its first request
// sent to its last response.
func checkBounds(t *testing.T, res result, cfg config) {
	t.Helper()
	p := cfg.policy()
	for _, name := range []string{"polite", "newcomer"} {
		c := byName(t, res, name)
		if sent, admitted, denied := c.sent.Load(), c.admitted.Load(), c.denied.Load(); sent == 0 || admitted != sent || denied != 0 {
			t.Errorf("%s: %d sent, %d admitted, %d denied; want every request admitted", name, sent, admitted, denied)
		}
	}
	for _, c := range res.clients {
		if c.failed.Load() != 0 {
			t.Errorf("%s: %d requests failed", c.name, c.failed.Load())
		}
		if !c.bounded {
			continue
		}
		span := time.Duration(c.last.Load() - c.first.Load())
		if bound := float64(p.Burst) + float64(p.Rate)*span.Seconds(); float64(c.admitted.Load()) > bound {
			t.Errorf("%s: %d admitted in %v, want at most Burst + Rate×T = %.1f", c.name, c.admitted.Load(), span, bound)
		}
	}
}

func byName(t *testing.T, res result, name string) *client {
	t.Helper()
	for _, c := range res.clients {
		if c.name == name {
			return c
		}
	}
	t.Fatalf("no client %q", name)
	return nil
}

// checkOutput checks the table was printed every second and each client
// got its verdict.
func checkOutput(t *testing.T, out string, cfg config) {
	t.Helper()
	if tables := strings.Count(out, "client   behaviour"); tables < int(cfg.duration/time.Second) {
		t.Errorf("printed %d tables in %v, want one a second", tables, cfg.duration)
	}
	for _, name := range []string{"polite", "newcomer", "greedy", "spoofer", "sprayer"} {
		if !regexp.MustCompile(`(?m)^PASS  ` + name + ` `).MatchString(out) {
			t.Errorf("no passing verdict for %s", name)
		}
	}
}

func TestDemoRejectsBadFlags(t *testing.T) {
	for name, bad := range map[string]func(*config){
		"-instances 0":  func(c *config) { c.instances = 0 },
		"-duration 0":   func(c *config) { c.duration = 0 },
		"-rate 0":       func(c *config) { c.rate = 0 },
		"-burst 0":      func(c *config) { c.burst = 0 },
		"-maxkeys 0":    func(c *config) { c.maxKeys = 0 },
		"-sprayers -1":  func(c *config) { c.sprayers = -1 },
		"-sprayrate -1": func(c *config) { c.sprayRate = -1 },
	} {
		cfg := defaultConfig()
		bad(&cfg)
		if _, err := run(context.Background(), cfg, &bytes.Buffer{}, newMemNet()); err == nil {
			t.Errorf("run with %s: no error", name)
		}
	}
}

// The sprayer's defaults follow the cap and the policy: half again as many
// addresses as the table holds, each visited again before the token it
// spent has refilled.
func TestSprayDefaults(t *testing.T) {
	cfg := defaultConfig()
	addrs, perSecond := cfg.spray()
	if addrs != 150 || perSecond != 1000 {
		t.Errorf("spray() = %d addresses, %v/s; want 150, 1000/s", addrs, perSecond)
	}
	if cycle := float64(addrs) / perSecond; cycle >= 1/cfg.rate {
		t.Errorf("each address comes back every %vs, not before its token refills (%vs)", cycle, 1/cfg.rate)
	}
	cfg.sprayers, cfg.sprayRate = 7, 3
	if addrs, perSecond := cfg.spray(); addrs != 7 || perSecond != 3 {
		t.Errorf("spray() with -sprayers 7 -sprayrate 3 = %d, %v; want 7, 3", addrs, perSecond)
	}
}

// bubbleClientOptions are the options of a client for a Redis outside a
// synctest bubble (the miniredis of TestDemoThreeInstances), used from
// inside it: no socket deadline, no dial deadline and no retry. A round
// trip to a server outside the bubble takes real time and no fake time,
// but go-redis turns a context's deadline (fake time) into a socket
// deadline that the runtime's poller waits for in real time: on a loaded
// machine a Store call would time out (a Fallback decision) or be retried
// (the script run twice). store/redisstore's newBubbleClient explains it
// in full.
func bubbleClientOptions() *redis.Options {
	return &redis.Options{
		ContextTimeoutEnabled: true, ReadTimeout: -2, WriteTimeout: -2, MaxRetries: -1,
		Dialer: func(ctx context.Context, network, addr string) (net.Conn, error) {
			var d net.Dialer
			return d.DialContext(context.WithoutCancel(ctx), network, addr)
		},
	}
}

// TestDemoThreeInstances runs the demo's -instances 3 mode: three servers
// sharing one Redis, and the limits hold across all three. The miniredis
// runs outside the bubble (its goroutines block on the network, which would
// stop fake time); its clock, the only one the Redis tier uses, follows the
// bubble's fake time.
func TestDemoThreeInstances(t *testing.T) {
	m := miniredis.RunT(t)
	synctest.Test(t, func(t *testing.T) {
		done := make(chan struct{})
		go func() {
			for {
				m.SetTime(time.Now())
				select {
				case <-done:
					return
				case <-time.After(time.Millisecond):
				}
			}
		}()
		defer close(done)
		var out bytes.Buffer
		cfg := defaultConfig()
		cfg.instances = 3
		cfg.redisAddr = m.Addr()
		cfg.redisOptions = bubbleClientOptions()
		cfg.duration = 5 * time.Second
		res, err := run(context.Background(), cfg, &out, newMemNet())
		t.Log("\n" + out.String())
		if err != nil {
			t.Fatalf("run: %v", err)
		}
		if !res.ok {
			t.Error("a verdict failed; want every verdict to pass")
		}
		checkOutput(t, out.String(), cfg)
		checkBounds(t, res, cfg)
		if !strings.Contains(out.String(), "3 instance(s) sharing Redis at "+m.Addr()) {
			t.Error("the header does not say the instances share a Redis")
		}
	})
}

// TestSharedStoreEmbedded: with no -redis, several instances share an
// embedded miniredis.
func TestSharedStoreEmbedded(t *testing.T) {
	cfg := defaultConfig()
	cfg.instances = 2
	s, err := sharedStore(cfg)
	if err != nil {
		t.Fatal(err)
	}
	defer s.close()
	if len(s.opts) != 1 || !strings.Contains(s.describe, "embedded miniredis") {
		t.Fatalf("sharedStore = %+v, want one WithStore option on an embedded miniredis", s)
	}
}
