// Command prometheus serves a rate-limited endpoint and floodgate's metrics
// for Prometheus: GET /hello on -addr, limited per client by floodgate's
// net/http middleware, and GET /metrics on -metrics-addr, a separate
// operator listener on loopback by default, so that the public port never
// serves metrics.
//
//	cd examples/prometheus && go run . -addr 127.0.0.1:8080 -metrics-addr 127.0.0.1:9090
//	curl -i http://127.0.0.1:8080/hello
//	curl -s http://127.0.0.1:9090/metrics | grep ^floodgate_
//
// The collector is package floodgateprom, in this module so that floodgate
// itself links no Prometheus code.
package main

import (
	"context"
	"errors"
	"flag"
	"io"
	"log"
	"net"
	"net/http"
	"os"
	"os/signal"
	"syscall"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/floodgate-go/floodgate/examples/prometheus/floodgateprom"
	"github.com/floodgate-go/floodgate/limiter"
	"github.com/floodgate-go/floodgate/nethttpmw"
)

func main() {
	addr := flag.String("addr", "127.0.0.1:8080", "listen address of the rate-limited endpoint")
	metricsAddr := flag.String("metrics-addr", "127.0.0.1:9090", "listen address of /metrics (keep it off the public network)")
	perSecond := flag.Int("per-second", 10, "requests per second per client (also the burst)")
	flag.Parse()

	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	api, err := net.Listen("tcp", *addr)
	if err != nil {
		log.Fatal(err)
	}
	metrics, err := net.Listen("tcp", *metricsAddr)
	if err != nil {
		log.Fatal(err)
	}
	log.Printf("serving http://%s/hello, metrics on http://%s/metrics", api.Addr(), metrics.Addr())
	if err := run(ctx, limiter.PerSecond(*perSecond), api, metrics); err != nil {
		log.Fatal(err)
	}
}

// run serves the endpoint on api and the metrics on metrics until ctx is
// done, then shuts both down; it closes the listeners.
func run(ctx context.Context, policy limiter.Policy, api, metrics net.Listener) error {
	l, err := limiter.New(policy)
	if err != nil {
		api.Close()
		metrics.Close()
		return err
	}
	defer l.Close()

	// A registry of its own rather than prometheus.DefaultRegisterer: it
	// serves exactly what is registered here.
	reg := prometheus.NewRegistry()
	reg.MustRegister(
		collectors.NewGoCollector(),
		collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}),
		floodgateprom.NewCollector(l, floodgateprom.WithConstLabels(prometheus.Labels{"limiter": "hello"})),
	)

	mux := http.NewServeMux()
	mux.HandleFunc("GET /hello", func(w http.ResponseWriter, _ *http.Request) { io.WriteString(w, "hello\n") })
	opsMux := http.NewServeMux()
	opsMux.Handle("GET /metrics", promhttp.HandlerFor(reg, promhttp.HandlerOpts{Registry: reg}))

	servers := []*http.Server{
		{Handler: nethttpmw.New(l)(mux), ReadHeaderTimeout: 10 * time.Second},
		{Handler: opsMux, ReadHeaderTimeout: 10 * time.Second},
	}
	errc := make(chan error, len(servers))
	for i, ln := range []net.Listener{api, metrics} {
		go func() { errc <- servers[i].Serve(ln) }()
	}

	var first error
	pending := len(servers)
	select {
	case <-ctx.Done():
	case first = <-errc: // a listener failed: stop the other too
		pending--
	}
	shutdownCtx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	for _, s := range servers {
		if err := s.Shutdown(shutdownCtx); err != nil && first == nil {
			first = err
		}
	}
	for range pending {
		if err := <-errc; !errors.Is(err, http.ErrServerClosed) && first == nil {
			first = err
		}
	}
	return first
}
