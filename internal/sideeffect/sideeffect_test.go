// Package sideeffect checks that importing floodgate's library packages
// changes nothing global: a library must not register handlers on
// http.DefaultServeMux (as importing expvar or net/http/pprof does), define
// command-line flags, or start work at init.
package sideeffect

import (
	"flag"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	_ "github.com/floodgate-go/floodgate/echomw"
	_ "github.com/floodgate-go/floodgate/limiter"
	_ "github.com/floodgate-go/floodgate/nethttpmw"
	_ "github.com/floodgate-go/floodgate/store/redisstore"
	_ "github.com/floodgate-go/floodgate/sweeper"
)

func TestImportRegistersNothing(t *testing.T) {
	for _, path := range []string{"/", "/debug/vars", "/debug/pprof/", "/metrics"} {
		if _, pattern := http.DefaultServeMux.Handler(httptest.NewRequest("GET", path, nil)); pattern != "" {
			t.Errorf("http.DefaultServeMux serves %s (pattern %q) after importing floodgate", path, pattern)
		}
	}
	flag.VisitAll(func(f *flag.Flag) {
		if !strings.HasPrefix(f.Name, "test.") {
			t.Errorf("a flag %q is defined after importing floodgate", f.Name)
		}
	})
}
