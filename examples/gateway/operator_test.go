package main

import (
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
)

// startServers serves the handlers of the servers run would start, the
// public one and the operator one, on httptest servers.
func startServers(t *testing.T, cfg string) (public, ops *httptest.Server) {
	t.Helper()
	gw, _ := startGateway(t, cfg, nil, nil)
	servers := newServers("127.0.0.1:8080", defaultOperatorAddr, gw)
	if len(servers) != 2 || servers[1].Addr != defaultOperatorAddr {
		t.Fatalf("newServers: %d servers, want the public one and the operator one on %s", len(servers), defaultOperatorAddr)
	}
	public = httptest.NewServer(servers[0].Handler)
	t.Cleanup(public.Close)
	ops = httptest.NewServer(servers[1].Handler)
	t.Cleanup(ops.Close)
	return public, ops
}

func getPath(t *testing.T, srv *httptest.Server, path string) (*http.Response, string) {
	t.Helper()
	resp, err := srv.Client().Get(srv.URL + path)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return resp, string(body)
}

// TestPublicPortServesNoDebug: the public port answers /debug/ with 404
// (limited like every request), neither the gateway's counters nor the
// upstream's /debug/ pages, however the path is spelled.
func TestPublicPortServesNoDebug(t *testing.T) {
	srv, _ := startServers(t, `{
  "per_ip": {"rate": 0.001, "burst": 100},
  "plans": {"anonymous": {"rate": 0.001, "burst": 100}}
}`)
	for _, path := range []string{"/debug/vars", "/debug/pprof/", "/debug", "//debug/vars", "/x/../debug/vars", "/%64ebug/vars"} {
		resp, body := getPath(t, srv, path)
		if resp.StatusCode != http.StatusNotFound || strings.Contains(body, "upstream") || strings.Contains(body, "ratelimit") {
			t.Errorf("public GET %s: status %d, body %q; want 404, from the gateway", path, resp.StatusCode, body)
		}
		if resp.Header.Get("RateLimit") == "" {
			t.Errorf("public GET %s: no RateLimit field: not limited", path)
		}
	}
	if resp, body := getPath(t, srv, "/debugger"); resp.StatusCode != http.StatusOK || body != "upstream saw /debugger" {
		t.Errorf("public GET /debugger: status %d, body %q; want the upstream's 200", resp.StatusCode, body)
	}
}

// TestOperatorListener: the operator listener serves /debug/vars with the
// gateway's counters, without expvar's cmdline and memstats, and nothing
// else: it is no second way into the upstream.
func TestOperatorListener(t *testing.T) {
	public, ops := startServers(t, testConfig)
	get(t, public, "")

	resp, body := getPath(t, ops, "/debug/vars")
	if resp.StatusCode != http.StatusOK || resp.Header.Get("Content-Type") != "application/json; charset=utf-8" {
		t.Fatalf("operator GET /debug/vars: status %d, Content-Type %q; want 200, JSON", resp.StatusCode, resp.Header.Get("Content-Type"))
	}
	var vars map[string]json.RawMessage
	if err := json.Unmarshal([]byte(body), &vars); err != nil {
		t.Fatalf("operator GET /debug/vars: %v in %s", err, body)
	}
	if len(vars) != 1 || vars["ratelimit"] == nil {
		t.Fatalf("operator GET /debug/vars: %s; want only the ratelimit counters", body)
	}
	var got stats
	if err := json.Unmarshal(vars["ratelimit"], &got); err != nil {
		t.Fatal(err)
	}
	if got.PerIP.Allowed != 1 || got.Plans["anonymous"].Allowed != 1 {
		t.Fatalf("ratelimit %s; want the one request counted", vars["ratelimit"])
	}
	for _, path := range []string{"/", "/hello", "/debug/pprof/"} {
		if resp, _ := getPath(t, ops, path); resp.StatusCode != http.StatusNotFound {
			t.Errorf("operator GET %s: status %d, want 404", path, resp.StatusCode)
		}
	}
}

func TestOperatorAddrDefaultsToLoopback(t *testing.T) {
	if !isLoopback(defaultOperatorAddr) {
		t.Fatalf("defaultOperatorAddr %q is not a loopback address", defaultOperatorAddr)
	}
	for addr, want := range map[string]bool{
		"127.0.0.1:9090":   true,
		"[::1]:9090":       true,
		"localhost:9090":   true,
		":9090":            false,
		"0.0.0.0:9090":     false,
		"192.0.2.1:9090":   false,
		"ops.example:9090": false,
		"garbage":          false,
	} {
		if got := isLoopback(addr); got != want {
			t.Errorf("isLoopback(%q) = %v, want %v", addr, got, want)
		}
	}
}
