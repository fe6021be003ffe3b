package main

import (
	"expvar"
	"io"
	"net/http"
)

// defaultOperatorAddr is where the operator endpoints listen unless
// -operator-addr says otherwise: loopback, so that only this host (or an
// agent on it that scrapes metrics) can read them.
const defaultOperatorAddr = "127.0.0.1:9090"

// operatorHandler serves the operator endpoints, on their own listener: only
// /debug/vars, in expvar's format, with the gateway's counters as
// "ratelimit".
//
// It serves only what it publishes itself, not expvar's global set, which
// adds "cmdline" (the command line, where a Redis password or a token
// passed as a flag would show) and "memstats": a reference that users copy
// may end up listening on more than loopback. Add
// vars.Set("memstats", expvar.Get("memstats")) if you want the latter.
func operatorHandler(gw *gateway) http.Handler {
	vars := new(expvar.Map)
	vars.Set("ratelimit", expvar.Func(gw.stats))
	mux := http.NewServeMux()
	mux.HandleFunc("GET /debug/vars", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json; charset=utf-8")
		io.WriteString(w, vars.String())
	})
	return mux
}
