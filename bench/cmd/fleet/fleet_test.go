package main

import (
	"context"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/floodgate-go/floodgate/internal/redistest"
)

// A smoke run against a real redis-server (skipped without one, unless
// FLOODGATE_REQUIRE_REDIS=1): every implementation decides, every decision
// is an admission without error, and the report has a row per
// implementation and concurrency and the ratios.
func TestFleetSmoke(t *testing.T) {
	srv := redistest.Start(t)
	out := filepath.Join(t.TempDir(), "fleet.md")
	if err := Run(context.Background(), Options{Smoke: true, Redis: srv.Addr(), Out: out, Args: "-smoke"}, io.Discard); err != nil {
		t.Fatal(err)
	}
	b, err := os.ReadFile(out)
	if err != nil {
		t.Fatal(err)
	}
	md := string(b)
	for _, want := range []string{"| 1 | floodgate |", "| 16 | floodgate (no coalescing) |", "| 16 | redis_rate |", "| flood: one key", "| 1 | ulule |", "## Ratios", "Smoke run"} {
		if !strings.Contains(md, want) {
			t.Errorf("report lacks %q:\n%s", want, md)
		}
	}
}
