// Package exampletest checks the example servers the same way: a client
// gets its burst of 10, then 429s, and /healthz is never limited.
package exampletest

import (
	"net/http"
	"net/http/httptest"
	"testing"
)

// CheckServer sends 30 requests to /hello and 20 to /healthz through h,
// from one client, with time frozen (call it inside a synctest bubble), and
// fails t unless exactly the burst of 10 gets through to /hello.
func CheckServer(t *testing.T, h http.Handler) {
	t.Helper()
	get := func(path string) int {
		w := httptest.NewRecorder()
		h.ServeHTTP(w, httptest.NewRequest(http.MethodGet, path, nil))
		return w.Code
	}
	codes := map[int]int{}
	for range 30 {
		codes[get("/hello")]++
	}
	if codes[http.StatusOK] != 10 || codes[http.StatusTooManyRequests] != 20 {
		t.Fatalf("statuses %v, want 10 OK and 20 429", codes)
	}
	for range 20 {
		if c := get("/healthz"); c != http.StatusOK {
			t.Fatalf("/healthz: %d, want 200 (skipped)", c)
		}
	}
}
