package main

import (
	"net/http"
	"net/http/httptest"
	"testing"

	"github.com/alicebob/miniredis/v2"

	"github.com/floodgate-go/floodgate/internal/storetesting"
)

// TestGatewayRedisOutage: while the Store cannot decide, the failure mode
// does, and the gateway applies its decisions like any other. Failing open
// (the default), each instance enforces the limits on its own buckets:
// 200s, then 429s with RateLimit headers as they run out, never a 503, and
// the counters show every decision was a fallback.
func TestGatewayRedisOutage(t *testing.T) {
	for _, tc := range []struct {
		name  string
		start func(t *testing.T) (gw *gateway, srv *httptest.Server, outage func())
	}{
		{"store down", func(t *testing.T) (*gateway, *httptest.Server, func()) {
			ipOpts, planOpts := remoteOptions(storetesting.Down{}, storetesting.Down{}, false, 0)
			gw, srv := startGateway(t, testConfig, ipOpts, planOpts)
			return gw, srv, func() {}
		}},
		{"redis closed mid-test", func(t *testing.T) (*gateway, *httptest.Server, func()) {
			m := miniredis.RunT(t)
			ipOpts, planOpts, closeStore, err := storeOptions(m.Addr(), false, testStoreTimeout)
			if err != nil {
				t.Fatal(err)
			}
			t.Cleanup(closeStore)
			gw, srv := startGateway(t, testConfig, ipOpts, planOpts)
			// One request decided by Redis, leaving tokens in both of its
			// buckets, so no denial is cached: after the outage, the
			// fail-open buckets decide, from full.
			wantStatus(t, get(t, srv, "pro-key"), http.StatusOK, "per-ip")
			if s := gatewayStats(t, gw); s.PerIP.Store.RoundTrips != 1 || s.PerIP.Store.Fallbacks != 0 {
				t.Fatalf("before the outage: per-IP stats %+v, want 1 round trip and no fallback", s.PerIP)
			}
			return gw, srv, m.Close
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			gw, srv, outage := tc.start(t)
			outage()
			wantStatus(t, get(t, srv, ""), http.StatusOK, "anonymous")
			wantStatus(t, get(t, srv, ""), http.StatusTooManyRequests, "anonymous")
			// The per-IP tokens the denied request took were given back:
			// two more requests fit in the per-IP burst of 3.
			wantStatus(t, get(t, srv, "pro-key"), http.StatusOK, "per-ip")
			wantStatus(t, get(t, srv, "pro-key"), http.StatusOK, "per-ip")
			resp := get(t, srv, "pro-key")
			wantStatus(t, resp, http.StatusTooManyRequests, "per-ip")
			if resp.Header.Get("Retry-After") == "" {
				t.Fatal("a fallback denial without Retry-After")
			}
			s := gatewayStats(t, gw)
			if s.PerIP.Store.Fallbacks != 5 || s.Plans["anonymous"].Store.Fallbacks != 2 || s.Plans["pro"].Store.Fallbacks != 2 {
				t.Fatalf("fallbacks: per-IP %d, anonymous %d, pro %d; want 5, 2, 2",
					s.PerIP.Store.Fallbacks, s.Plans["anonymous"].Store.Fallbacks, s.Plans["pro"].Store.Fallbacks)
			}
		})
	}
}

// TestGatewayRedisOutageFailClosed: configured to fail closed, the gateway
// denies every request the Store cannot decide, with 429 and Retry-After
// (the breaker's cooldown), not 503.
func TestGatewayRedisOutageFailClosed(t *testing.T) {
	ipOpts, planOpts := remoteOptions(storetesting.Down{}, storetesting.Down{}, true, 0)
	gw, srv := startGateway(t, testConfig, ipOpts, planOpts)
	for _, key := range []string{"", "pro-key", "pro-key"} {
		resp := get(t, srv, key)
		wantStatus(t, resp, http.StatusTooManyRequests, "per-ip")
		if got := resp.Header.Get("Retry-After"); got != "1" {
			t.Fatalf("Retry-After %q, want 1 (the breaker's cooldown)", got)
		}
	}
	if s := gatewayStats(t, gw); s.PerIP.Store.Fallbacks != 3 || s.PerIP.Allowed != 0 {
		t.Fatalf("per-IP stats %+v, want 3 fallbacks and nothing allowed", s.PerIP)
	}
}
