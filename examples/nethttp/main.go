// Command nethttp is the smallest net/http server rate-limited by
// floodgate: 10 requests per second per client, with a burst of 10.
//
//	go run ./examples/nethttp -addr 127.0.0.1:8080
//	curl -i http://127.0.0.1:8080/hello
//
// Behind a proxy or load balancer, pass its addresses with -trust
// (comma-separated CIDR prefixes); the client is then read from
// X-Forwarded-For, but only when the request comes from a trusted address.
package main

import (
	"flag"
	"fmt"
	"io"
	"log"
	"net/http"
	"net/netip"
	"strings"
	"time"

	"github.com/floodgate-go/floodgate/limiter"
	"github.com/floodgate-go/floodgate/nethttpmw"
)

func main() {
	addr := flag.String("addr", "127.0.0.1:8080", "listen address")
	trust := flag.String("trust", "", "comma-separated CIDR prefixes of trusted proxies, e.g. 10.0.0.0/8")
	flag.Parse()

	h, closeFn, err := newHandler(*trust)
	if err != nil {
		log.Fatal(err)
	}
	defer closeFn()
	srv := &http.Server{Addr: *addr, Handler: h, ReadHeaderTimeout: 10 * time.Second}
	log.Printf("listening on http://%s", *addr)
	log.Fatal(srv.ListenAndServe())
}

// newHandler builds the server's handler; the test runs it with httptest.
func newHandler(trust string) (http.Handler, func() error, error) {
	l, err := limiter.New(limiter.PerSecond(10))
	if err != nil {
		return nil, nil, err
	}
	var opts []nethttpmw.Option
	if trust != "" {
		var prefixes []netip.Prefix
		for _, s := range strings.Split(trust, ",") {
			p, err := netip.ParsePrefix(strings.TrimSpace(s))
			if err != nil {
				l.Close()
				return nil, nil, fmt.Errorf("-trust: %w", err)
			}
			prefixes = append(prefixes, p)
		}
		opts = append(opts, nethttpmw.WithTrustedProxies(prefixes...))
	}
	opts = append(opts, nethttpmw.WithSkip(func(r *http.Request) bool { return r.URL.Path == "/healthz" }))

	mux := http.NewServeMux()
	mux.HandleFunc("GET /hello", func(w http.ResponseWriter, _ *http.Request) { io.WriteString(w, "hello\n") })
	mux.HandleFunc("GET /healthz", func(w http.ResponseWriter, _ *http.Request) { io.WriteString(w, "ok\n") })
	return nethttpmw.New(l, opts...)(mux), l.Close, nil
}
