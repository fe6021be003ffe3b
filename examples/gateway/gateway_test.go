package main

import (
	"encoding/json"
	"fmt"
	"io"
	"maps"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/alicebob/miniredis/v2"

	"github.com/floodgate-go/floodgate/limiter"
)

// testConfig uses hourly limits: nothing refills during a test.
const testConfig = `{
  "per_ip": {"rate": 0.001, "burst": 3},
  "plans": {
    "anonymous": {"rate": 0.001, "burst": 1},
    "pro":       {"rate": 0.001, "burst": 100}
  },
  "keys": {"pro-key": "pro"}
}`

// testStoreTimeout is the tests' wait for miniredis: long enough that a
// loaded machine (CI, -race) never turns a decision Redis would make into
// the failure mode's, which would change the statuses the tests expect.
const testStoreTimeout = 10 * time.Second

func writeConfig(t *testing.T, body string) string {
	path := filepath.Join(t.TempDir(), "plans.json")
	if err := os.WriteFile(path, []byte(body), 0o600); err != nil {
		t.Fatal(err)
	}
	return path
}

// startGateway runs the gateway in front of a real upstream, both on
// httptest servers.
func startGateway(t *testing.T, cfg string, ipOpts, planOpts []limiter.Option) (*gateway, *httptest.Server) {
	t.Helper()
	upstream := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		io.WriteString(w, "upstream saw "+r.URL.Path)
	}))
	t.Cleanup(upstream.Close)
	c, err := loadConfig(writeConfig(t, cfg))
	if err != nil {
		t.Fatal(err)
	}
	u, _ := url.Parse(upstream.URL)
	gw, err := newGateway(c, u, nil, ipOpts, planOpts)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { gw.Close() })
	srv := httptest.NewServer(gw)
	t.Cleanup(srv.Close)
	return gw, srv
}

func get(t *testing.T, srv *httptest.Server, apiKey string) *http.Response {
	t.Helper()
	req, _ := http.NewRequest("GET", srv.URL+"/hello", nil)
	if apiKey != "" {
		req.Header.Set("X-API-Key", apiKey)
	}
	resp, err := srv.Client().Do(req)
	if err != nil {
		t.Fatal(err)
	}
	io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	return resp
}

func wantStatus(t *testing.T, resp *http.Response, status int, policy string) {
	t.Helper()
	if resp.StatusCode != status {
		t.Fatalf("status %d, want %d", resp.StatusCode, status)
	}
	if got := resp.Header.Get("RateLimit"); policy != "" && !strings.HasPrefix(got, `"`+policy+`"`) {
		t.Fatalf("RateLimit %q, want the %q policy's", got, policy)
	}
}

// TestGatewayCompositeLimits: the per-IP limit and the plan's apply at
// once, and a request denied by the plan does not spend the per-IP limit.
func TestGatewayCompositeLimits(t *testing.T) {
	for _, tc := range []struct {
		name string
		opts func(t *testing.T) ([]limiter.Option, []limiter.Option)
	}{
		{"local", func(*testing.T) ([]limiter.Option, []limiter.Option) { return nil, nil }},
		{"redis", func(t *testing.T) ([]limiter.Option, []limiter.Option) {
			m := miniredis.RunT(t)
			ip, plan, closeStore, err := storeOptions(m.Addr(), false, testStoreTimeout)
			if err != nil {
				t.Fatal(err)
			}
			t.Cleanup(closeStore)
			return ip, plan
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			ipOpts, planOpts := tc.opts(t)
			_, srv := startGateway(t, testConfig, ipOpts, planOpts)
			wantStatus(t, get(t, srv, ""), http.StatusOK, "anonymous")
			for range 3 { // denied by the anonymous plan: the per-IP tokens come back
				wantStatus(t, get(t, srv, ""), http.StatusTooManyRequests, "anonymous")
			}
			wantStatus(t, get(t, srv, "pro-key"), http.StatusOK, "per-ip")
			wantStatus(t, get(t, srv, "pro-key"), http.StatusOK, "per-ip")
			wantStatus(t, get(t, srv, "pro-key"), http.StatusTooManyRequests, "per-ip") // 3 per IP in all
			// An unknown key is charged to the per-IP limit too: none left.
			wantStatus(t, get(t, srv, "stolen-key"), http.StatusTooManyRequests, "per-ip")
		})
	}
}

// TestGatewayLimitsKeyGuesses: a request with an unknown API key is
// charged to its IP's limit before it is refused, so guessing keys from one
// IP gets 401 until the per-IP tokens run out, then 429, and leaves that IP
// no tokens for requests with a valid key either.
func TestGatewayLimitsKeyGuesses(t *testing.T) {
	gw, srv := startGateway(t, testConfig, nil, nil)
	statuses := map[int]int{}
	for i := range 300 {
		resp := get(t, srv, fmt.Sprintf("guess-%d", i))
		statuses[resp.StatusCode]++
		if got := resp.Header.Get("RateLimit"); !strings.HasPrefix(got, `"per-ip"`) {
			t.Fatalf("guess %d: status %d, RateLimit %q, want the per-ip policy's", i, resp.StatusCode, got)
		}
	}
	if want := map[int]int{http.StatusUnauthorized: 3, http.StatusTooManyRequests: 297}; !maps.Equal(statuses, want) {
		t.Fatalf("300 guesses from one IP: statuses %v, want %v (per-IP burst 3)", statuses, want)
	}
	wantStatus(t, get(t, srv, "pro-key"), http.StatusTooManyRequests, "per-ip")
	if s := gatewayStats(t, gw); s.PerIP.Allowed != 3 || s.PerIP.Denied != 298 {
		t.Fatalf("per-IP stats %+v, want 3 allowed, 298 denied", s.PerIP)
	}
}

func TestGatewayReload(t *testing.T) {
	gw, srv := startGateway(t, testConfig, nil, nil)
	wantStatus(t, get(t, srv, ""), http.StatusOK, "")
	wantStatus(t, get(t, srv, ""), http.StatusTooManyRequests, "")

	bad, err := loadConfig(writeConfig(t, strings.Replace(testConfig, `"pro"`, `"gold"`, 1)))
	if err == nil {
		gw.Reload(bad)
		t.Fatal("a config whose key names a missing plan loaded")
	}

	bigger := strings.Replace(testConfig, `"anonymous": {"rate": 0.001, "burst": 1}`, `"anonymous": {"rate": 0.001, "burst": 2}`, 1)
	c, err := loadConfig(writeConfig(t, bigger))
	if err != nil {
		t.Fatal(err)
	}
	before := gw.state.Load().gates["anonymous"]
	if err := gw.Reload(c); err != nil {
		t.Fatal(err)
	}
	// The client keeps its bucket, and so its spending: it is still out of
	// tokens, now under the new policy, whose headers the response carries
	// from the same Gate (headers follow the Limiter's policy).
	resp := get(t, srv, "")
	wantStatus(t, resp, http.StatusTooManyRequests, "anonymous")
	if got := resp.Header.Get("RateLimit-Policy"); !strings.Contains(got, "q=2") {
		t.Fatalf("RateLimit-Policy %q after the reload, want q=2", got)
	}
	if gw.state.Load().gates["anonymous"] != before {
		t.Fatal("the reload rebuilt the plan's Gate; its Limiter survived, so should the Gate")
	}
}

func TestGatewayStats(t *testing.T) {
	gw, srv := startGateway(t, testConfig, nil, nil)
	get(t, srv, "")
	get(t, srv, "")
	got := gatewayStats(t, gw)
	// The second request was denied by its plan: the per-IP admission it
	// got first was given back, and counts as denied, not allowed.
	if got.PerIP.Allowed != 1 || got.PerIP.Denied != 1 || got.Plans["anonymous"].Allowed != 1 || got.Plans["anonymous"].Denied != 1 {
		t.Fatalf("stats %+v", got)
	}
}

type stats struct {
	PerIP limiter.Stats            `json:"per-ip"`
	Plans map[string]limiter.Stats `json:"plans"`
}

// gatewayStats returns gw's counters as /debug/vars shows them.
func gatewayStats(t *testing.T, gw *gateway) stats {
	t.Helper()
	b, err := json.Marshal(gw.stats())
	if err != nil {
		t.Fatal(err)
	}
	var got stats
	if err := json.Unmarshal(b, &got); err != nil {
		t.Fatal(err)
	}
	return got
}

func TestLoadConfigRejectsBadFiles(t *testing.T) {
	for name, body := range map[string]string{
		"not json":                "{",
		"unknown field":           `{"per_ip": {"rate": 1, "burst": 1}, "plans": {"anonymous": {"rate": 1, "burst": 1}}, "extra": 1}`,
		"no anonymous":            `{"per_ip": {"rate": 1, "burst": 1}, "plans": {"free": {"rate": 1, "burst": 1}}}`,
		"invalid policy":          `{"per_ip": {"rate": 1, "burst": 0}, "plans": {"anonymous": {"rate": 1, "burst": 1}}}`,
		"plan name not printable": `{"per_ip": {"rate": 1, "burst": 1}, "plans": {"anonymous": {"rate": 1, "burst": 1}, "caf\u00e9": {"rate": 1, "burst": 1}}}`,
		"plan named per-ip":       `{"per_ip": {"rate": 1, "burst": 1}, "plans": {"anonymous": {"rate": 1, "burst": 1}, "per-ip": {"rate": 1, "burst": 1}}}`,
		"key without plan":        `{"per_ip": {"rate": 1, "burst": 1}, "plans": {"anonymous": {"rate": 1, "burst": 1}}, "keys": {"k": "gold"}}`,
	} {
		if _, err := loadConfig(writeConfig(t, body)); err == nil {
			t.Errorf("%s: loaded", name)
		}
	}
	if _, err := loadConfig(""); err != nil {
		t.Errorf("the built-in config: %v", err)
	}
}
