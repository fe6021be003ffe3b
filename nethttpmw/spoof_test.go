package nethttpmw

import (
	"fmt"
	"math/rand/v2"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"testing"
	"testing/synctest"

	"golang.org/x/time/rate"

	"github.com/floodgate-go/floodgate/limiter"
)

// spoofBurst is the burst of the spoofing tests' policy; its rate is so low
// that nothing refills during a test (time is frozen by synctest anyway).
const spoofBurst = 5

func spoofPolicy() limiter.Policy {
	return limiter.Policy{Rate: rate.Every(1000 * 3600e9), Burst: spoofBurst}
}

func randAddr(rng *rand.Rand) string {
	if rng.IntN(2) == 0 {
		return netip.AddrFrom4([4]byte{byte(rng.Uint32()), byte(rng.Uint32()), byte(rng.Uint32()), byte(rng.Uint32())}).String()
	}
	var b [16]byte
	for i := range b {
		b[i] = byte(rng.Uint32())
	}
	return netip.AddrFrom16(b).String()
}

// spoofed is a request from client with every forwarding header set to a
// fresh random address, as an attacker rotating them would send it.
func spoofed(rng *rand.Rand, client string) *http.Request {
	r := httptest.NewRequest("GET", "/", nil)
	r.RemoteAddr = netip.AddrPortFrom(netip.MustParseAddr(client), uint16(1024+rng.IntN(60000))).String()
	r.Header.Set("X-Forwarded-For", randAddr(rng)+", "+randAddr(rng))
	r.Header.Set("X-Real-IP", randAddr(rng))
	r.Header.Set("Forwarded", fmt.Sprintf(`for="%s";proto=https`, randAddr(rng)))
	r.Header.Set("True-Client-IP", randAddr(rng))
	return r
}

// viaProxy passes r through a trusted proxy at proxy that writes header h
// the way real proxies do: appending the peer to X-Forwarded-For or
// Forwarded, setting X-Real-IP, and passing every other header through.
func viaProxy(r *http.Request, h ProxyHeader, proxy string) {
	peer := netip.MustParseAddrPort(r.RemoteAddr).Addr()
	switch h {
	case HeaderXForwardedFor:
		r.Header.Add("X-Forwarded-For", peer.String()) // a new line: joined with the others
	case HeaderForwarded:
		if peer.Is6() {
			r.Header.Add("Forwarded", fmt.Sprintf(`for="[%s]:4711"`, peer))
		} else {
			r.Header.Add("Forwarded", "for="+peer.String())
		}
	case HeaderXRealIP:
		r.Header.Set("X-Real-IP", peer.String())
	}
	r.RemoteAddr = proxy + ":443"
}

// A spoofCase is one deployment of the spoofing table: how many trusted
// proxies stand between the client and the server, and which header they
// write.
type spoofCase struct {
	name    string
	proxies int
	header  ProxyHeader
	opts    []Option
}

func spoofCases() []spoofCase {
	trusted := WithTrustedProxies(netip.MustParsePrefix("10.0.0.0/8"))
	var cs []spoofCase
	cs = append(cs, spoofCase{"no proxy, default options", 0, "", nil})
	for _, h := range []ProxyHeader{HeaderXForwardedFor, HeaderForwarded, HeaderXRealIP} {
		opts := []Option{trusted, WithProxyHeader(h)}
		cs = append(cs, spoofCase{fmt.Sprintf("no proxy, trusting %s", h), 0, h, opts})
		cs = append(cs, spoofCase{fmt.Sprintf("one proxy writing %s", h), 1, h, opts})
		if h != HeaderXRealIP { // X-Real-IP carries one hop: a second proxy overwrites it
			cs = append(cs, spoofCase{fmt.Sprintf("two proxies writing %s", h), 2, h, opts})
		}
	}
	return cs
}

// request builds the request of client as it reaches the server in c.
func (c spoofCase) request(rng *rand.Rand, client string) *http.Request {
	r := spoofed(rng, client)
	for i := range c.proxies {
		viaProxy(r, c.header, fmt.Sprintf("10.0.0.%d", i+1))
	}
	return r
}

// TestSpoofing: a client rotating every forwarding header on every request
// keeps hitting its own bucket and gets 429s after its burst, behind no
// proxy, one or two trusted proxies; another client keeps its own bucket.
func TestSpoofing(t *testing.T) {
	for _, c := range spoofCases() {
		t.Run(c.name, func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				l, err := limiter.New(spoofPolicy())
				if err != nil {
					t.Fatal(err)
				}
				defer l.Close()
				h := New(l, c.opts...)(http.HandlerFunc(func(http.ResponseWriter, *http.Request) {}))
				rng := rand.New(rand.NewPCG(1, 2))
				for _, client := range []string{"203.0.113.5", "2001:db8:aa:bb::5", "198.51.100.9"} {
					var codes [600]int
					for range 50 {
						w := httptest.NewRecorder()
						h.ServeHTTP(w, c.request(rng, client))
						codes[w.Code]++
					}
					if codes[200] != spoofBurst || codes[429] != 50-spoofBurst {
						t.Fatalf("client %s: %d OK and %d 429, want %d and %d", client, codes[200], codes[429], spoofBurst, 50-spoofBurst)
					}
				}
				if s := l.Stats(); s.Keys != 3 {
					t.Fatalf("limiter tracks %d keys, want 3 (one per client)", s.Keys)
				}
			})
		})
	}
}
