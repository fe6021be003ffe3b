package nethttpmw

import (
	"errors"
	"net/http"
	"net/netip"
	"strings"
	"testing"
)

// The seed corpora live in testdata/fuzz/<FuzzName>/ and run as ordinary
// tests; `go test -fuzz=FuzzClientAddr ./nethttpmw` explores further.

var fuzzTrusted = []netip.Prefix{
	netip.MustParsePrefix("10.0.0.0/8"),
	netip.MustParsePrefix("2001:db8:ffff::/48"),
}

// FuzzClientAddr feeds arbitrary RemoteAddrs and forwarding headers
// (two header lines) to the Identity in each header mode and checks that
// it never panics, never returns a non-normalised address, only leaves the
// peer when the peer is trusted, and agrees with a simple reference walk
// on inputs within the bounds.
func FuzzClientAddr(f *testing.F) {
	f.Add("10.0.0.1:443", "198.51.100.7, 10.0.0.2", "", uint8(0))
	f.Fuzz(func(t *testing.T, remote, line1, line2 string, mode uint8) {
		header := []ProxyHeader{HeaderXForwardedFor, HeaderForwarded, HeaderXRealIP}[int(mode)%3]
		id := mustIdentity(t, WithTrustedProxies(fuzzTrusted...), WithProxyHeader(header))
		h := http.Header{http.CanonicalHeaderKey(string(header)): {line1, line2}}
		got, err := id.ClientAddr(remote, h)
		r := &http.Request{RemoteAddr: remote, Header: h}
		for range 2 { // the second call may come from a cache
			want := UnidentifiedKey
			if err == nil {
				want = id.AddrKey(got)
			}
			if k := id.Key(r); k != want {
				t.Fatalf("Key(%q, %q) = %q, want %q", remote, h, k, want)
			}
		}
		peer, peerOK := parseRemoteAddr(remote)
		if !peerOK {
			if !errors.Is(err, ErrUnidentified) {
				t.Fatalf("ClientAddr(%q) = %v, %v; want ErrUnidentified", remote, got, err)
			}
			return
		}
		if err != nil || !got.IsValid() || got.Zone() != "" || got.Is4In6() {
			t.Fatalf("ClientAddr(%q, %q) = %v, %v: not a normalised address", remote, h, got, err)
		}
		if !id.isTrusted(peer) && got != peer {
			t.Fatalf("ClientAddr(%q, %q) = %v: left an untrusted peer %v", remote, h, got, peer)
		}
		key := id.AddrKey(got)
		if key == "" || key == UnidentifiedKey || len(key) > 64 || key != id.AddrKey(got) {
			t.Fatalf("AddrKey(%v) = %q", got, key)
		}
		if header == HeaderXForwardedFor && withinBounds(line1, line2) {
			if want := refClientAddr(id, peer, []string{line1, line2}); got != want {
				t.Fatalf("ClientAddr(%q, %q) = %v, reference walk says %v", remote, h, got, want)
			}
		}
	})
}

// withinBounds reports whether an X-Forwarded-For value is one the
// reference walk handles the same way: no quotes, short hops, few hops.
func withinBounds(lines ...string) bool {
	n := 0
	for _, l := range lines {
		if strings.ContainsRune(l, '"') {
			return false
		}
		for e := range strings.SplitSeq(l, ",") {
			if len(e) >= maxHopLen {
				return false
			}
			n++
		}
	}
	return n <= maxHops
}

// refClientAddr is the specification of the walk, written the obvious way.
func refClientAddr(id *Identity, peer netip.Addr, lines []string) netip.Addr {
	if !id.isTrusted(peer) {
		return peer
	}
	var hops []string
	for _, l := range lines {
		hops = append(hops, strings.Split(l, ",")...)
	}
	client := peer
	for i := len(hops) - 1; i >= 0; i-- {
		hop := strings.Trim(hops[i], " \t")
		if hop == "" {
			continue
		}
		a, ok := parseNode(hop)
		if !ok {
			return client
		}
		client = a
		if !id.isTrusted(a) {
			return a
		}
	}
	return client
}

// FuzzParseNode checks that a parsed hop is a normalised address that
// parses back to itself.
func FuzzParseNode(f *testing.F) {
	f.Add("[2001:db8::1]:4711")
	f.Fuzz(func(t *testing.T, s string) {
		a, ok := parseNode(s)
		if !ok {
			return
		}
		if !a.IsValid() || a.Zone() != "" || a.Is4In6() {
			t.Fatalf("parseNode(%q) = %v: not normalised", s, a)
		}
		if b, ok := parseNode(a.String()); !ok || b != a {
			t.Fatalf("parseNode(%q) = %v, but parseNode(%q) = %v, %v", s, a, a.String(), b, ok)
		}
	})
}
