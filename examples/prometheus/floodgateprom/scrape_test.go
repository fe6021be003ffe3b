package floodgateprom_test

import (
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"testing/synctest"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"
	"github.com/prometheus/client_golang/prometheus/testutil"
	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"

	"github.com/floodgate-go/floodgate/examples/prometheus/floodgateprom"
	"github.com/floodgate-go/floodgate/limiter"
)

// TestScrapeOverHTTP serves a fresh registry with promhttp and scrapes it
// over HTTP, as Prometheus does: the text parses, every floodgate metric is
// there with its type, and the values are the decisions made (burst 3,
// five requests: 3 allowed, 2 denied).
func TestScrapeOverHTTP(t *testing.T) {
	var l *limiter.Limiter
	synctest.Test(t, func(t *testing.T) { // frozen time: exact counts
		var err error
		l, err = limiter.New(limiter.Policy{Rate: 1, Burst: 3})
		if err != nil {
			t.Fatal(err)
		}
		allow(t, l, "192.0.2.1", 5)
		l.Close() // the sweeper belongs to the bubble; a closed Limiter still reports
	})

	reg := prometheus.NewPedanticRegistry()
	reg.MustRegister(floodgateprom.NewCollector(l, floodgateprom.WithConstLabels(prometheus.Labels{"limiter": "api"})))
	srv := httptest.NewServer(promhttp.HandlerFor(reg, promhttp.HandlerOpts{}))
	defer srv.Close()

	req, err := http.NewRequest("GET", srv.URL+"/metrics", nil)
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Accept", "text/plain") // the text format, whatever promhttp prefers
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK || !strings.HasPrefix(resp.Header.Get("Content-Type"), "text/plain") {
		t.Fatalf("%s, Content-Type %q", resp.Status, resp.Header.Get("Content-Type"))
	}
	parser := expfmt.NewTextParser(model.UTF8Validation)
	families, err := parser.TextToMetricFamilies(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	types := map[string]string{
		"floodgate_decisions_total":             "COUNTER",
		"floodgate_fallback_decisions_total":    "COUNTER",
		"floodgate_overflow_decisions_total":    "COUNTER",
		"floodgate_keys":                        "GAUGE",
		"floodgate_keys_max":                    "GAUGE",
		"floodgate_retired_keys_total":          "COUNTER",
		"floodgate_sweeps_total":                "COUNTER",
		"floodgate_policy_tokens_per_second":    "GAUGE",
		"floodgate_policy_burst_tokens":         "GAUGE",
		"floodgate_store_round_trips_total":     "COUNTER",
		"floodgate_store_errors_total":          "COUNTER",
		"floodgate_store_deny_cache_hits_total": "COUNTER",
		"floodgate_store_prefetch_hits_total":   "COUNTER",
		"floodgate_store_breaker_opens_total":   "COUNTER",
		"floodgate_store_breaker_open":          "GAUGE",
		"floodgate_store_cached_keys":           "GAUGE",
	}
	if len(families) != len(types) {
		t.Errorf("%d families, want %d", len(families), len(types))
	}
	for name, typ := range types {
		mf, ok := families[name]
		if !ok {
			t.Errorf("%s missing", name)
			continue
		}
		if got := mf.GetType().String(); got != typ {
			t.Errorf("%s is a %s, want a %s", name, got, typ)
		}
	}
	values := map[string]float64{}
	for _, m := range families["floodgate_decisions_total"].GetMetric() {
		var outcome, limiterLabel string
		for _, lp := range m.GetLabel() {
			switch lp.GetName() {
			case "outcome":
				outcome = lp.GetValue()
			case "limiter":
				limiterLabel = lp.GetValue()
			}
		}
		if limiterLabel != "api" {
			t.Errorf("limiter label %q, want api", limiterLabel)
		}
		values[outcome] = m.GetCounter().GetValue()
	}
	if values["allowed"] != 3 || values["denied"] != 2 || len(values) != 2 {
		t.Errorf("decisions %v, want allowed 3, denied 2", values)
	}

	// The same through client_golang's own scrape helper.
	if err := testutil.ScrapeAndCompare(srv.URL+"/metrics", strings.NewReader(`
# HELP floodgate_keys Keys tracked now.
# TYPE floodgate_keys gauge
floodgate_keys{limiter="api"} 1
`), "floodgate_keys"); err != nil {
		t.Fatal(err)
	}
}
