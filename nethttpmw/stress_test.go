package nethttpmw

import (
	"fmt"
	"net/http"
	"net/netip"
	"sync"
	"sync/atomic"
	"testing"
	"testing/synctest"
)

// TestConcurrentClients: goroutines share the middleware (and so its key
// caches and header tables) with more clients than cache slots, some
// behind a trusted proxy. Under -race nothing races, and with time frozen
// each client is admitted exactly its burst, however the caches evict.
func TestConcurrentClients(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		const clients, workers, perClient = 5 * cacheSlots / 4, 4, spoofBurst + 2
		l := newLimiter(t, spoofPolicy())
		var admitted [clients]atomic.Int32
		h := New(l, WithTrustedProxies(netip.MustParsePrefix("10.0.0.0/8")))(http.HandlerFunc(func(_ http.ResponseWriter, r *http.Request) {
			var i int
			fmt.Sscanf(r.URL.Path, "/%d", &i)
			admitted[i].Add(1)
		}))
		var wg sync.WaitGroup
		for w := range workers {
			wg.Go(func() {
				dw := &discardWriter{h: http.Header{}}
				for round := range perClient * clients / workers {
					i := (round*workers + w) % clients
					r := get(netip.AddrPortFrom(netip.AddrFrom4([4]byte{198, 18, byte(i >> 8), byte(i)}), 1).String())
					r.URL.Path = fmt.Sprintf("/%d", i)
					if i%2 == 1 { // the same client through the trusted proxy
						r.RemoteAddr = "10.0.0.1:443"
						r.Header.Set("X-Forwarded-For", fmt.Sprintf("198.18.%d.%d", byte(i>>8), byte(i)))
					}
					clear(dw.h)
					h.ServeHTTP(dw, r)
				}
			})
		}
		wg.Wait()
		for i := range admitted {
			if n := admitted[i].Load(); n != spoofBurst {
				t.Fatalf("client %d admitted %d times, want %d", i, n, spoofBurst)
			}
		}
	})
}
