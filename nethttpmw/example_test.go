package nethttpmw_test

import (
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"net/netip"

	"github.com/floodgate-go/floodgate/limiter"
	"github.com/floodgate-go/floodgate/nethttpmw"
)

func Example() {
	l, err := limiter.New(limiter.PerMinute(2))
	if err != nil {
		panic(err)
	}
	defer l.Close()
	hello := http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) { io.WriteString(w, "hello") })
	h := nethttpmw.New(l)(hello)

	for range 3 {
		w := httptest.NewRecorder()
		h.ServeHTTP(w, httptest.NewRequest("GET", "/", nil))
		fmt.Println(w.Code, w.Header().Get("RateLimit-Policy"), w.Header().Get("RateLimit"), w.Header().Values("Retry-After"))
	}
	// Output:
	// 200 "default";q=2;w=60 "default";r=1;t=30 []
	// 200 "default";q=2;w=60 "default";r=0;t=60 []
	// 429 "default";q=2;w=60 "default";r=0;t=30 [30]
}

// Behind a load balancer at 10.0.0.0/8 that appends the client to
// X-Forwarded-For, the client is the first untrusted address from the
// right; what the client itself put in the header does not count.
func ExampleWithTrustedProxies() {
	id, err := nethttpmw.NewIdentity(nethttpmw.WithTrustedProxies(netip.MustParsePrefix("10.0.0.0/8")))
	if err != nil {
		panic(err)
	}
	r := httptest.NewRequest("GET", "/", nil)
	r.RemoteAddr = "10.0.0.7:41000"                              // the load balancer
	r.Header.Set("X-Forwarded-For", "6.6.6.6, 2001:db8:1:2::99") // spoofed, then appended by the balancer
	fmt.Println(id.Key(r))

	r.RemoteAddr = "198.51.100.1:41000" // not a trusted proxy: headers are ignored
	fmt.Println(id.Key(r))
	// Output:
	// 2001:db8:1:2::/64
	// 198.51.100.1
}
