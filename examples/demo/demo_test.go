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

func TestDemo(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		var out bytes.Buffer
		cfg := defaultConfig()
		ok, err := run(context.Background(), cfg, &out, newMemNet())
		t.Log("\n" + out.String())
		if err != nil || !ok {
			t.Fatalf("run = %v, %v; want every verdict to pass", ok, err)
		}
		checkOutput(t, out.String(), cfg)
	})
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
	cfg := defaultConfig()
	cfg.instances = 0
	if _, err := run(context.Background(), cfg, &bytes.Buffer{}, newMemNet()); err == nil {
		t.Fatal("run with -instances 0: no error")
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
		cfg.duration = 5 * time.Second
		ok, err := run(context.Background(), cfg, &out, newMemNet())
		t.Log("\n" + out.String())
		if err != nil || !ok {
			t.Fatalf("run = %v, %v; want every verdict to pass", ok, err)
		}
		checkOutput(t, out.String(), cfg)
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
