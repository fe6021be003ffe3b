// Package sideeffect checks that importing floodgate's library packages
// changes nothing global: a library must not register handlers on
// http.DefaultServeMux (as importing expvar or net/http/pprof does), define
// command-line flags, or start work at init.
package sideeffect

import (
	"flag"
	"net/http"
	"net/http/httptest"
	"os/exec"
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

// TestDependencies checks which packages link which third-party code: the
// limiter, the store contract and the net/http middleware link nothing
// beyond golang.org/x/time; only redisstore links go-redis, and only
// echomw links Echo.
func TestDependencies(t *testing.T) {
	goTool, err := exec.LookPath("go")
	if err != nil {
		t.Skip("no go command on PATH to list dependencies with")
	}
	const mod = "github.com/floodgate-go/floodgate/"
	for pkg, allowed := range map[string][]string{
		"limiter":          {"golang.org/x/time/"},
		"store":            {"golang.org/x/time/"},
		"nethttpmw":        {"golang.org/x/time/"},
		"sweeper":          nil,
		"store/redisstore": {"golang.org/x/time/", "github.com/redis/go-redis/", "github.com/cespare/xxhash/", "github.com/dgryski/go-rendezvous", "go.uber.org/atomic"},
		"echomw":           {"golang.org/x/time/", "github.com/labstack/", "github.com/valyala/", "github.com/mattn/", "golang.org/x/"},
	} {
		out, err := exec.Command(goTool, "list", "-deps", "-f", "{{if not .Standard}}{{.ImportPath}}{{end}}", mod+pkg).Output()
		if err != nil {
			t.Fatalf("go list -deps %s: %v", pkg, err)
		}
	deps:
		for _, dep := range strings.Fields(string(out)) {
			if strings.HasPrefix(dep, mod) {
				continue
			}
			for _, prefix := range allowed {
				if strings.HasPrefix(dep, prefix) {
					continue deps
				}
			}
			t.Errorf("%s links %s", pkg, dep)
		}
	}
}
