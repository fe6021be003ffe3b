package main

import (
	"context"
	"io"
	"net"
	"net/http"
	"slices"
	"strings"
	"testing"
	"time"

	"go.uber.org/goleak"

	"github.com/floodgate-go/floodgate/limiter"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

func listen(t *testing.T) net.Listener {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	return ln
}

func get(t *testing.T, url string) (int, string) {
	t.Helper()
	resp, err := http.Get(url)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return resp.StatusCode, string(body)
}

// TestRun runs the server's wiring on free loopback ports: a client gets
// its burst of 3, then 429s; the public port does not serve /metrics (the
// request is limited and denied like any other); /metrics on the operator
// listener reports those decisions. Cancelling
// the context shuts both down.
func TestRun(t *testing.T) {
	api, metrics := listen(t), listen(t)
	apiURL, metricsURL := "http://"+api.Addr().String(), "http://"+metrics.Addr().String()
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- run(ctx, limiter.PerHour(3), api, metrics) }()

	var codes []int
	for range 5 {
		code, _ := get(t, apiURL+"/hello")
		codes = append(codes, code)
	}
	if want := []int{200, 200, 200, 429, 429}; !slices.Equal(codes, want) {
		t.Errorf("/hello answered %v, want %v", codes, want)
	}
	if code, body := get(t, apiURL+"/metrics"); code == http.StatusOK || strings.Contains(body, "floodgate_") {
		t.Errorf("the public listener serves /metrics: %d", code)
	}
	code, body := get(t, metricsURL+"/metrics")
	if code != http.StatusOK {
		t.Fatalf("/metrics: %d", code)
	}
	for _, line := range []string{
		`floodgate_decisions_total{limiter="hello",outcome="allowed"} 3`,
		`floodgate_decisions_total{limiter="hello",outcome="denied"} 3`, // with the public /metrics request
		`floodgate_keys{limiter="hello"} 1`,
		`floodgate_policy_burst_tokens{limiter="hello"} 3`,
		"# TYPE go_goroutines gauge",
	} {
		if !strings.Contains(body, "\n"+line+"\n") {
			t.Errorf("/metrics lacks %q", line)
		}
	}

	cancel()
	select {
	case err := <-done:
		if err != nil {
			t.Fatal(err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("run did not return after cancel")
	}
	if _, err := http.Get(apiURL + "/hello"); err == nil {
		t.Error("the public listener still answers after shutdown")
	}
	http.DefaultClient.CloseIdleConnections()
}

// TestRunBadPolicy: an invalid policy is an error, and the listeners are
// closed.
func TestRunBadPolicy(t *testing.T) {
	api, metrics := listen(t), listen(t)
	if err := run(context.Background(), limiter.Policy{Rate: -1, Burst: 1}, api, metrics); err == nil {
		t.Fatal("run accepted a negative rate")
	}
	if _, err := api.Accept(); err == nil {
		t.Error("the listener is still open")
	}
}
