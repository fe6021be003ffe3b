package nethttpmw

import (
	"errors"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"strings"
	"testing"
)

func mustIdentity(t testing.TB, opts ...Option) *Identity {
	t.Helper()
	id, err := NewIdentity(opts...)
	if err != nil {
		t.Fatalf("NewIdentity: %v", err)
	}
	return id
}

func trust(s ...string) Option {
	var ps []netip.Prefix
	for _, p := range s {
		ps = append(ps, netip.MustParsePrefix(p))
	}
	return WithTrustedProxies(ps...)
}

func TestClientAddr(t *testing.T) {
	const proxy = "10.0.0.1:443"
	xff := func(v ...string) http.Header { return http.Header{"X-Forwarded-For": v} }
	fwd := func(v ...string) http.Header { return http.Header{"Forwarded": v} }
	xri := func(v ...string) http.Header { return http.Header{"X-Real-Ip": v} }
	tests := []struct {
		name   string
		opts   []Option
		remote string
		h      http.Header
		want   string // "" means ErrUnidentified
	}{
		{"peer v4", nil, "192.0.2.1:1234", nil, "192.0.2.1"},
		{"peer v6", nil, "[2001:db8::1]:1234", nil, "2001:db8::1"},
		{"peer v6 zone", nil, "[fe80::1%eth0]:1234", nil, "fe80::1"},
		{"peer v4-mapped", nil, "[::ffff:192.0.2.1]:1234", nil, "192.0.2.1"},
		{"peer without port", nil, "192.0.2.1", nil, "192.0.2.1"},
		{"empty remote", nil, "", nil, ""},
		{"unix socket remote", nil, "@", nil, ""},
		{"garbage remote", nil, "not an address:80", nil, ""},
		{"huge remote", nil, strings.Repeat("1", 1<<20), nil, ""},
		{"headers ignored by default", nil, "192.0.2.1:1", xff("198.51.100.7"), "192.0.2.1"},
		{"headers ignored from untrusted peer", []Option{trust("10.0.0.0/8")}, "192.0.2.1:1", xff("198.51.100.7"), "192.0.2.1"},
		{"one trusted proxy", []Option{trust("10.0.0.0/8")}, proxy, xff("198.51.100.7"), "198.51.100.7"},
		{"spoofed left part ignored", []Option{trust("10.0.0.0/8")}, proxy, xff("6.6.6.6, 198.51.100.7"), "198.51.100.7"},
		{"two trusted proxies", []Option{trust("10.0.0.0/8")}, proxy, xff("6.6.6.6, 198.51.100.7, 10.0.0.2"), "198.51.100.7"},
		{"multiple header lines", []Option{trust("10.0.0.0/8")}, proxy, xff("6.6.6.6", "198.51.100.7, 10.0.0.2", "10.0.0.3"), "198.51.100.7"},
		{"empty elements", []Option{trust("10.0.0.0/8")}, proxy, xff("198.51.100.7,, ,10.0.0.2, "), "198.51.100.7"},
		{"all hops trusted", []Option{trust("10.0.0.0/8")}, proxy, xff("10.1.1.1, 10.0.0.2"), "10.1.1.1"},
		{"no header from trusted proxy", []Option{trust("10.0.0.0/8")}, proxy, nil, "10.0.0.1"},
		{"garbage hop stops at the proxy", []Option{trust("10.0.0.0/8")}, proxy, xff("198.51.100.7, garbage"), "10.0.0.1"},
		{"unknown stops at the last trusted hop", []Option{trust("10.0.0.0/8")}, proxy, xff("6.6.6.6, unknown, 10.0.0.2"), "10.0.0.2"},
		{"xff with port", []Option{trust("10.0.0.0/8")}, proxy, xff("198.51.100.7:5555"), "198.51.100.7"},
		{"xff bracketed v6 with port", []Option{trust("10.0.0.0/8")}, proxy, xff("[2001:db8::7]:5555"), "2001:db8::7"},
		{"xff v4-mapped", []Option{trust("10.0.0.0/8")}, proxy, xff("::ffff:198.51.100.7"), "198.51.100.7"},
		{"xff mapped trusted hop", []Option{trust("10.0.0.0/8")}, proxy, xff("198.51.100.7, ::ffff:10.0.0.9"), "198.51.100.7"},
		{"trusted v4-mapped prefix", []Option{trust("::ffff:10.0.0.0/104")}, proxy, xff("198.51.100.7"), "198.51.100.7"},
		{"trusted v6 proxy", []Option{trust("2001:db8:ffff::/48")}, "[2001:db8:ffff::1]:443", xff("198.51.100.7"), "198.51.100.7"},
		{"hop too long", []Option{trust("10.0.0.0/8")}, proxy, xff(strings.Repeat(" ", 300) + "198.51.100.7"), "10.0.0.1"},
		{"forwarded", []Option{trust("10.0.0.0/8"), WithProxyHeader(HeaderForwarded)}, proxy, fwd("for=198.51.100.7;proto=https"), "198.51.100.7"},
		{"forwarded quoted v6 port", []Option{trust("10.0.0.0/8"), WithProxyHeader(HeaderForwarded)}, proxy, fwd(`for="[2001:db8::1]:4711"`), "2001:db8::1"},
		{"forwarded case and spaces", []Option{trust("10.0.0.0/8"), WithProxyHeader(HeaderForwarded)}, proxy, fwd(`proto=http; For=198.51.100.7 , for=10.0.0.2;by=10.0.0.1`), "198.51.100.7"},
		{"forwarded multiple lines", []Option{trust("10.0.0.0/8"), WithProxyHeader(HeaderForwarded)}, proxy, fwd("for=6.6.6.6", `for=198.51.100.7;host="a,b"`, "for=10.0.0.2"), "198.51.100.7"},
		{"forwarded obfuscated", []Option{trust("10.0.0.0/8"), WithProxyHeader(HeaderForwarded)}, proxy, fwd("for=198.51.100.7, for=_hidden, for=10.0.0.2"), "10.0.0.2"},
		{"forwarded unknown", []Option{trust("10.0.0.0/8"), WithProxyHeader(HeaderForwarded)}, proxy, fwd("for=unknown"), "10.0.0.1"},
		{"forwarded without for", []Option{trust("10.0.0.0/8"), WithProxyHeader(HeaderForwarded)}, proxy, fwd("proto=https;by=10.0.0.1"), "10.0.0.1"},
		{"forwarded unbracketed v6 with port rejected", []Option{trust("10.0.0.0/8"), WithProxyHeader(HeaderForwarded)}, proxy, fwd(`for="2001:db8::1:4711:1:1:1:1:1:1"`), "10.0.0.1"},
		{"forwarded ignores xff", []Option{trust("10.0.0.0/8"), WithProxyHeader(HeaderForwarded)}, proxy, xff("6.6.6.6"), "10.0.0.1"},
		{"x-real-ip", []Option{trust("10.0.0.0/8"), WithProxyHeader(HeaderXRealIP)}, proxy, xri("198.51.100.7"), "198.51.100.7"},
		{"x-real-ip ignores xff", []Option{trust("10.0.0.0/8"), WithProxyHeader(HeaderXRealIP)}, proxy, xff("6.6.6.6"), "10.0.0.1"},
		{"xff ignores forwarded and x-real-ip", []Option{trust("10.0.0.0/8")}, proxy, http.Header{"Forwarded": {"for=6.6.6.6"}, "X-Real-Ip": {"6.6.6.7"}, "True-Client-Ip": {"6.6.6.8"}}, "10.0.0.1"},
		{"hop limit", []Option{trust("10.0.0.0/8")}, proxy, xff(strings.Repeat("10.9.9.9, ", 40) + "10.0.0.2"), "10.9.9.9"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			id := mustIdentity(t, tt.opts...)
			got, err := id.ClientAddr(tt.remote, tt.h)
			if tt.want == "" {
				if !errors.Is(err, ErrUnidentified) {
					t.Fatalf("ClientAddr(%.40q) = %v, %v; want ErrUnidentified", tt.remote, got, err)
				}
				return
			}
			if err != nil || got != netip.MustParseAddr(tt.want) {
				t.Fatalf("ClientAddr(%.40q, %.80q) = %v, %v; want %s", tt.remote, tt.h, got, err, tt.want)
			}
		})
	}
}

func TestKey(t *testing.T) {
	tests := []struct {
		opts   []Option
		remote string
		want   string
	}{
		{nil, "192.0.2.1:1", "192.0.2.1"},
		{nil, "[::ffff:192.0.2.1]:1", "192.0.2.1"},
		{nil, "[2001:db8:1:2:aaaa:bbbb:cccc:dddd]:1", "2001:db8:1:2::/64"},
		{nil, "[2001:db8:1:2::1%eth0]:1", "2001:db8:1:2::/64"},
		{[]Option{WithIPv6Prefix(48)}, "[2001:db8:1:2::1]:1", "2001:db8:1::/48"},
		{[]Option{WithIPv6Prefix(128)}, "[2001:db8:1:2::1]:1", "2001:db8:1:2::1"},
		{[]Option{WithIPv6Prefix(56)}, "192.0.2.1:1", "192.0.2.1"},
		{nil, "nonsense", UnidentifiedKey},
		{nil, "", UnidentifiedKey},
	}
	for _, tt := range tests {
		id := mustIdentity(t, tt.opts...)
		r := httptest.NewRequest("GET", "/", nil)
		r.RemoteAddr = tt.remote
		for range 2 { // miss, then cache hit
			if got := id.Key(r); got != tt.want {
				t.Errorf("Key(RemoteAddr %q) = %q, want %q", tt.remote, got, tt.want)
			}
		}
	}
}

// TestIPv6Grouping: every address of a /64 shares one key, the next /64
// does not.
func TestIPv6Grouping(t *testing.T) {
	id := mustIdentity(t)
	base := netip.MustParseAddr("2001:db8:5:6::")
	want := id.AddrKey(base)
	b := base.As16()
	for i := range 256 {
		b[8], b[15] = byte(i), byte(i*7)
		if got := id.AddrKey(netip.AddrFrom16(b)); got != want {
			t.Fatalf("AddrKey(%v) = %q, want %q", netip.AddrFrom16(b), got, want)
		}
	}
	b[7] = 1
	if got := id.AddrKey(netip.AddrFrom16(b)); got == want {
		t.Fatalf("AddrKey(%v) = %q: another /64 shares the key", netip.AddrFrom16(b), got)
	}
}

// TestKeyCacheCollisions checks the cache never returns another address's
// key, with more addresses than slots.
func TestKeyCacheCollisions(t *testing.T) {
	id := mustIdentity(t, WithIPv6Prefix(128))
	for round := range 2 {
		for i := range 3 * cacheSlots {
			a := netip.AddrFrom4([4]byte{10, byte(i >> 16), byte(i >> 8), byte(i)})
			if got := id.AddrKey(a); got != a.String() {
				t.Fatalf("round %d: AddrKey(%v) = %q", round, a, got)
			}
		}
	}
}

// TestHugeHeaderBoundedWork: a 1 MB forwarding header from a trusted proxy
// costs no allocation and a bounded scan.
func TestHugeHeaderBoundedWork(t *testing.T) {
	huge := strings.Repeat("6", 1<<20)
	hugeList := strings.Repeat("6.6.6.6, ", 1<<17) + "198.51.100.7"
	hugeTrusted := strings.Repeat("10.0.0.9,", 1<<17)
	tests := []struct {
		name string
		h    http.Header
		want string
	}{
		{"one 1MB hop", http.Header{"X-Forwarded-For": {huge}}, "10.0.0.1"},
		{"1MB list", http.Header{"X-Forwarded-For": {hugeList}}, "198.51.100.7"},
		{"1MB of trusted hops", http.Header{"X-Forwarded-For": {hugeTrusted}}, "10.0.0.9"},
		{"1MB hop then a client", http.Header{"X-Forwarded-For": {huge + ", 198.51.100.7"}}, "198.51.100.7"},
		{"1MB quoted", http.Header{"X-Forwarded-For": {`"` + huge}}, "10.0.0.1"},
		{"1MB backslashes", http.Header{"X-Forwarded-For": {strings.Repeat(`\`, 1<<20) + `"`}}, "10.0.0.1"},
	}
	id := mustIdentity(t, trust("10.0.0.0/8"))
	for _, tt := range tests {
		r := httptest.NewRequest("GET", "/", nil)
		r.RemoteAddr, r.Header = "10.0.0.1:1", tt.h
		if got := id.Key(r); got != tt.want {
			t.Errorf("%s: Key = %q, want %q", tt.name, got, tt.want)
		}
		if n := testing.AllocsPerRun(20, func() { id.Key(r) }); n != 0 {
			t.Errorf("%s: Key allocates %v times, want 0", tt.name, n)
		}
	}
	idf := mustIdentity(t, trust("10.0.0.0/8"), WithProxyHeader(HeaderForwarded))
	r := httptest.NewRequest("GET", "/", nil)
	r.RemoteAddr, r.Header = "10.0.0.1:1", http.Header{"Forwarded": {"for=" + huge}}
	if got := idf.Key(r); got != "10.0.0.1" {
		t.Errorf("Forwarded 1MB: Key = %q, want 10.0.0.1", got)
	}
}

// TestKeyAllocs: the key of a returning client costs nothing.
func TestKeyAllocs(t *testing.T) {
	id := mustIdentity(t, trust("10.0.0.0/8"))
	for _, remote := range []string{"192.0.2.1:1", "[2001:db8::1]:1", "10.0.0.1:1"} {
		r := httptest.NewRequest("GET", "/", nil)
		r.RemoteAddr = remote
		r.Header.Set("X-Forwarded-For", "198.51.100.7, 10.0.0.2")
		id.Key(r)
		if n := testing.AllocsPerRun(100, func() { id.Key(r) }); n != 0 {
			t.Errorf("Key(%s) allocates %v times, want 0", remote, n)
		}
	}
}

func TestIdentityOptionErrors(t *testing.T) {
	for _, o := range []Option{
		WithTrustedProxies(netip.Prefix{}),
		WithProxyHeader("True-Client-IP"),
		WithIPv6Prefix(0),
		WithIPv6Prefix(129),
		nil,
	} {
		if _, err := NewIdentity(o); !errors.Is(err, ErrInvalidOption) {
			t.Errorf("NewIdentity(bad option) error = %v, want ErrInvalidOption", err)
		}
	}
}

// TestScanBounded: whatever the header, the scanner looks at no more than
// maxHops hops of maxHopLen bytes (plus separators) per request.
func TestScanBounded(t *testing.T) {
	const bound = 2 * maxHops * (maxHopLen + 2)
	for _, v := range []string{
		strings.Repeat(",", 1<<20),
		strings.Repeat(" ,", 1<<19),
		strings.Repeat("10.0.0.9,", 1<<17),
		strings.Repeat("x", 1<<20),
		strings.Repeat(`"`, 1<<20),
		strings.Repeat(`\"`, 1<<19),
		strings.Repeat("for=10.0.0.9,", 1<<16),
	} {
		for _, fwd := range []bool{false, true} {
			s := newHopScanner([]string{v, v}, fwd)
			for range maxHops {
				if _, st := s.next(); st != hopAddr {
					break
				}
			}
			if s.scanned > bound {
				t.Errorf("header %.20q (forwarded %v): scanned %d bytes, bound %d", v, fwd, s.scanned, bound)
			}
		}
	}
}

// TestKeyCacheThousandClients: with 1,000 clients taking turns (the
// benchmark's workload), nearly every key comes from the cache.
func TestKeyCacheThousandClients(t *testing.T) {
	id := mustIdentity(t)
	addrs := make([]netip.Addr, 1000)
	for i := range addrs {
		addrs[i] = netip.AddrFrom4([4]byte{203, 0, byte(i >> 8), byte(i)})
		id.AddrKey(addrs[i])
	}
	n := testing.AllocsPerRun(10, func() {
		for _, a := range addrs {
			id.AddrKey(a)
		}
	})
	if perKey := n / 1000; perKey > 0.1 {
		t.Fatalf("%.3f allocations per key for 1,000 returning clients, want < 0.1", perKey)
	}
}

// TestRemoteCache: the RemoteAddr cache answers only for untrusted peers;
// a trusted proxy's requests are always walked.
func TestRemoteCache(t *testing.T) {
	id := mustIdentity(t, trust("10.0.0.0/8"))
	for i := range 3 {
		for _, c := range []struct{ remote, xff, want string }{
			{"192.0.2.1:1000", "6.6.6.6", "192.0.2.1"},
			{"192.0.2.1:1001", "6.6.6.7", "192.0.2.1"},
			{"10.0.0.1:443", "198.51.100.1", "198.51.100.1"},
			{"10.0.0.1:443", "198.51.100.2", "198.51.100.2"},
			{"10.0.0.1:443", "", "10.0.0.1"},
			{"[2001:db8::1]:1", "6.6.6.6", "2001:db8::/64"},
		} {
			r := httptest.NewRequest("GET", "/", nil)
			r.RemoteAddr = c.remote
			if c.xff != "" {
				r.Header.Set("X-Forwarded-For", c.xff)
			}
			if got := id.Key(r); got != c.want {
				t.Fatalf("round %d: Key(%s, XFF %q) = %q, want %q", i, c.remote, c.xff, got, c.want)
			}
		}
	}
}
