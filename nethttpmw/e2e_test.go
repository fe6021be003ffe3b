package nethttpmw

import (
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"net/http/httputil"
	"net/netip"
	"net/url"
	"strconv"
	"sync"
	"testing"
)

// TestEndToEnd runs the middleware in a real server on loopback and talks
// to it with a real http.Client: spoofed forwarding headers do not help,
// the burst is honoured, and the 429 carries the fields.
func TestEndToEnd(t *testing.T) {
	l := newLimiter(t, spoofPolicy())
	mux := http.NewServeMux()
	mux.HandleFunc("GET /hello", func(w http.ResponseWriter, _ *http.Request) { _, _ = io.WriteString(w, "hello") })
	srv := httptest.NewServer(New(l)(mux))
	defer srv.Close()
	client := srv.Client()
	var statuses []int
	for i := range 2 * spoofBurst {
		req, _ := http.NewRequest("GET", srv.URL+"/hello", nil)
		req.Header.Set("X-Forwarded-For", "198.51.100."+strconv.Itoa(i))
		req.Header.Set("X-Real-IP", "198.51.100."+strconv.Itoa(i))
		resp, err := client.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		body, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		statuses = append(statuses, resp.StatusCode)
		if resp.Header.Get("RateLimit") == "" || resp.Header.Get("RateLimit-Policy") == "" {
			t.Fatalf("response %d lacks the RateLimit fields: %v", i, resp.Header)
		}
		switch {
		case i < spoofBurst && (resp.StatusCode != 200 || string(body) != "hello"):
			t.Fatalf("request %d: %d %q, want 200 hello", i, resp.StatusCode, body)
		case i >= spoofBurst && (resp.StatusCode != 429 || resp.Header.Get("Retry-After") == ""):
			t.Fatalf("request %d: %d Retry-After %q, want 429 with Retry-After", i, resp.StatusCode, resp.Header.Get("Retry-After"))
		}
	}
	if s := l.Stats(); s.Keys != 1 || s.Allowed != spoofBurst {
		t.Fatalf("stats %+v after %v: want one key (127.0.0.1) and %d admitted", s, statuses, spoofBurst)
	}
}

// TestEndToEndBehindProxy puts a real reverse proxy (httputil.ReverseProxy,
// which appends its peer to X-Forwarded-For) in front of the server. The
// server trusts the proxy's address, 127.0.0.1, and nothing else; the client
// connects to the proxy from 127.0.0.2 and spoofs X-Forwarded-For on every
// request. It still gets exactly its burst.
func TestEndToEndBehindProxy(t *testing.T) {
	l := newLimiter(t, spoofPolicy())
	var keys sync.Map
	id := mustIdentity(t, WithTrustedProxies(netip.MustParsePrefix("127.0.0.1/32")))
	backend := httptest.NewServer(New(l, WithTrustedProxies(netip.MustParsePrefix("127.0.0.1/32")))(
		http.HandlerFunc(func(_ http.ResponseWriter, r *http.Request) { keys.Store(id.Key(r), true) })))
	defer backend.Close()
	target, _ := url.Parse(backend.URL)
	front := httptest.NewServer(httputil.NewSingleHostReverseProxy(target))
	defer front.Close()

	dialer := &net.Dialer{LocalAddr: &net.TCPAddr{IP: net.IPv4(127, 0, 0, 2)}}
	if c, err := dialer.Dial("tcp", front.Listener.Addr().String()); err != nil {
		t.Skipf("cannot dial from 127.0.0.2 on this machine: %v", err)
	} else {
		c.Close()
	}
	client := &http.Client{Transport: &http.Transport{DialContext: dialer.DialContext}}
	defer client.CloseIdleConnections()
	codes := map[int]int{}
	for i := range 4 * spoofBurst {
		req, _ := http.NewRequest("GET", front.URL+"/", nil)
		req.Header.Set("X-Forwarded-For", "198.51.100."+strconv.Itoa(i))
		req.Header.Set("Forwarded", "for=198.51.100."+strconv.Itoa(i))
		resp, err := client.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		codes[resp.StatusCode]++
	}
	n := 0
	keys.Range(func(k, _ any) bool {
		n++
		if k != "127.0.0.2" {
			t.Errorf("backend saw key %q, want 127.0.0.2", k)
		}
		return true
	})
	if codes[200] != spoofBurst || codes[429] != 3*spoofBurst || n != 1 {
		t.Fatalf("statuses %v with %d keys; want %d OK, %d 429, one key", codes, n, spoofBurst, 3*spoofBurst)
	}
}
