package main

import (
	"testing"
	"testing/synctest"

	"github.com/floodgate-go/floodgate/internal/exampletest"
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
		exampletest.CheckServer(t, e)
	})
	if _, _, err := newServer("not-a-prefix"); err == nil {
		t.Fatal("newServer accepted a bad -trust")
	}
}
