package main

import (
	"net/http"
	"net/http/httptest"
	"testing"
	"testing/synctest"
)

// TestServer runs the example's Echo server: a client gets its burst of 10,
// then 429s; /healthz is never limited. Time is frozen by synctest, so the
// counts are exact.
func TestServer(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		e, closeFn, err := newServer("10.0.0.0/8, 2001:db8::/32")
		if err != nil {
			t.Fatal(err)
		}
		defer closeFn()
		get := func(path string) int {
			w := httptest.NewRecorder()
			e.ServeHTTP(w, httptest.NewRequest(http.MethodGet, path, nil))
			return w.Code
		}
		codes := map[int]int{}
		for range 30 {
			codes[get("/hello")]++
		}
		if codes[200] != 10 || codes[429] != 20 {
			t.Fatalf("statuses %v, want 10 OK and 20 429", codes)
		}
		for range 20 {
			if c := get("/healthz"); c != 200 {
				t.Fatalf("/healthz: %d, want 200 (skipped)", c)
			}
		}
	})
	if _, _, err := newServer("not-a-prefix"); err == nil {
		t.Fatal("newHandler accepted a bad -trust")
	}
}
