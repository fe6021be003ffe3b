package main

import (
	"testing"
	"testing/synctest"

	"github.com/floodgate-go/floodgate/internal/exampletest"
)

// TestServer runs the example's handler: a client gets its burst of 10,
// then 429s; /healthz is never limited. Time is frozen by synctest, so the
// counts are exact.
func TestServer(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		h, closeFn, err := newHandler("10.0.0.0/8, 2001:db8::/32")
		if err != nil {
			t.Fatal(err)
		}
		defer closeFn()
		exampletest.CheckServer(t, h)
	})
	if _, _, err := newHandler("not-a-prefix"); err == nil {
		t.Fatal("newHandler accepted a bad -trust")
	}
}
