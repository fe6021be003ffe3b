// Command echo is the smallest Echo server rate-limited by floodgate: 10
// requests per second per client, with a burst of 10.
//
//	go run ./examples/echo -addr 127.0.0.1:8080
//	curl -i http://127.0.0.1:8080/hello
//
// Behind a proxy or load balancer, pass its addresses with -trust
// (comma-separated CIDR prefixes). The middleware never uses c.RealIP().
package main

import (
	"flag"
	"fmt"
	"log"
	"net/http"
	"net/netip"
	"strings"

	"github.com/labstack/echo/v4"

	"github.com/floodgate-go/floodgate/echomw"
	"github.com/floodgate-go/floodgate/limiter"
	"github.com/floodgate-go/floodgate/nethttpmw"
)

func main() {
	addr := flag.String("addr", "127.0.0.1:8080", "listen address")
	trust := flag.String("trust", "", "comma-separated CIDR prefixes of trusted proxies, e.g. 10.0.0.0/8")
	flag.Parse()

	e, closeFn, err := newServer(*trust)
	if err != nil {
		log.Fatal(err)
	}
	defer closeFn()
	log.Fatal(e.Start(*addr))
}

// newServer builds the Echo instance; the test runs it with httptest.
func newServer(trust string) (*echo.Echo, func() error, error) {
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
	g, err := nethttpmw.NewGate(l, opts...)
	if err != nil {
		l.Close()
		return nil, nil, err
	}

	e := echo.New()
	e.HideBanner = true
	e.Use(echomw.FromGate(g, echomw.Config{Skipper: func(c echo.Context) bool { return c.Path() == "/healthz" }}))
	e.GET("/hello", func(c echo.Context) error { return c.String(http.StatusOK, "hello\n") })
	e.GET("/healthz", func(c echo.Context) error { return c.String(http.StatusOK, "ok\n") })
	return e, l.Close, nil
}
