package bench

import (
	"encoding/json"
	"flag"
	"os"
	"testing"
	"testing/synctest"
	"time"
)

var (
	correctnessOut  = flag.String("correctness.out", "", "write the correctness results as JSON to this file")
	correctnessRuns = flag.Int("correctness.runs", 1, "runs of each correctness scenario")
	correctnessDur  = flag.Duration("correctness.d", 200*time.Millisecond, "length of a contention run; the cleanup pause is a quarter of it")
)

// CorrectnessResult is one run of one scenario on one implementation, as
// written by -correctness.out for cmd/report.
type CorrectnessResult struct {
	Scenario  string
	Impl      string
	Run       int
	Admitted  int
	Max       int
	ElapsedNS int64
}

// TestCorrectness runs every scenario on every implementation. floodgate
// and the floor must admit no more than Burst + Rate×T, and at least their
// burst; the peers' numbers are recorded, not judged.
func TestCorrectness(t *testing.T) {
	var results []CorrectnessResult
	for _, s := range Scenarios() {
		for _, im := range Impls() {
			for run := range *correctnessRuns {
				o, err := runScenario(t, s, im)
				if err != nil {
					t.Fatalf("%s/%s: %v", s.Name, im.Name, err)
				}
				t.Logf("%-10s %-10s run %d: admitted %d, max %d (Burst + Rate×%v)", s.Name, im.Name, run, o.Admitted, o.Max, o.Elapsed.Round(time.Millisecond))
				results = append(results, CorrectnessResult{s.Name, im.Name, run, o.Admitted, o.Max, int64(o.Elapsed)})
				if !exact(im) {
					continue
				}
				// The lower bound is loose: these runs use real time on a
				// shared machine, where a descheduled process makes fewer
				// requests than it could have. The upper bound is exact.
				if o.Over() > 0 || o.Admitted < s.Config.Burst {
					t.Errorf("%s/%s: admitted %d in %v, want at most %d (Burst + Rate×T) and at least Burst %d",
						s.Name, im.Name, o.Admitted, o.Elapsed, o.Max, s.Config.Burst)
				}
			}
		}
	}
	for _, im := range HTTPImpls() {
		if im.Bare == "" {
			continue
		}
		o, err := Spoof(im, SpoofRequests)
		if err != nil {
			t.Fatal(err)
		}
		t.Logf("%-10s %-10s: admitted %d of %d spoofed requests, max %d", SpoofScenario, im.Name, o.Admitted, SpoofRequests, o.Max)
		results = append(results, CorrectnessResult{SpoofScenario, im.Name, 0, o.Admitted, o.Max, int64(o.Elapsed)})
		if isFloodgateHTTP(im) && o.Admitted != SpoofConfig.Burst {
			t.Errorf("%s/%s: admitted %d, want exactly Burst %d", SpoofScenario, im.Name, o.Admitted, SpoofConfig.Burst)
		}
	}
	if *correctnessOut == "" {
		return
	}
	data, err := json.MarshalIndent(results, "", "\t")
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(*correctnessOut, data, 0o644); err != nil {
		t.Fatal(err)
	}
}

// exact reports whether im is held to the policy's bound: floodgate, and the
// floor it is measured against.
func exact(im Impl) bool { return im.Name == floodgateImpl.Name || im.Name == floorImpl.Name }

// runScenario runs s on im, inside a synctest bubble if s needs a fake clock.
func runScenario(t *testing.T, s Scenario, im Impl) (o Outcome, err error) {
	if !s.FakeClock {
		return s.Run(im, s.Config, *correctnessDur)
	}
	synctest.Test(t, func(*testing.T) {
		o, err = s.Run(im, s.Config, *correctnessDur)
	})
	return o, err
}
