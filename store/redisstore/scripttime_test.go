package redisstore_test

import (
	"context"
	"crypto/sha1"
	_ "embed"
	"encoding/hex"
	"slices"
	"strconv"
	"strings"
	"testing"

	"github.com/redis/go-redis/v9"

	"github.com/floodgate-go/floodgate/internal/redistest"
)

// scriptV1 is the script before the binary state (state "%.17g %.17g",
// parsed with string.match), kept to measure against and to document the
// format of keys under the old markers.
//
//go:embed testdata/script-v1.lua
var scriptV1 string

// scriptNew is the script the Store runs.
//
//go:embed script.lua
var scriptNew string

// BenchmarkScriptTime measures Redis's own time per call of today's script
// and of scriptV1, on a real redis-server, at policies where every call
// reads and writes state (1/s and 10^6/s, a burst never exhausted): the
// time each EVALSHA took inside Redis, from SLOWLOG with every command
// logged, the two scripts interleaved in the same pipelines so that a
// loaded machine slows both alike. It reports both means (the slowest 10%
// of each dropped: a preempted server) and their ratio, new/v1, and fails
// unless every call admitted and found its key's state (no keyspace miss).
//
//	go test -run '^$' -bench ScriptTime -count 5 ./store/redisstore
func BenchmarkScriptTime(b *testing.B) {
	srv := redistest.Start(b, "--slowlog-log-slower-than", "0", "--slowlog-max-len", "1024")
	c := newClient(b, srv.Addr())
	ctx := context.Background()
	scripts := []string{scriptV1, scriptNew}

	shas := make([]string, len(scripts))
	for i, s := range scripts {
		sum := sha1.Sum([]byte(s))
		shas[i] = hex.EncodeToString(sum[:])
		if err := c.ScriptLoad(ctx, s).Err(); err != nil {
			b.Fatal(err)
		}
	}
	for _, rate := range []string{"1", "1000000"} {
		b.Run("rate="+rate, func(b *testing.B) {
			const pairs, keys = 32, 8
			if err := c.FlushAll(ctx).Err(); err != nil {
				b.Fatal(err)
			}
			us := [2][]float64{}
			calls := make([]*redis.IntSliceCmd, 0, 2*pairs)
			cost := 100_000_000 // the first batch (4 calls a key) leaves each bucket 60% full: its state persists
			batch := func() {
				calls = calls[:0]
				p := c.Pipeline()
				p.SlowLogReset(ctx)
				for j := range pairs {
					for i, sha := range shas {
						key := "bench" + strconv.Itoa(i) + ":" + strconv.Itoa(j%keys)
						cmd := redis.NewIntSliceCmd(ctx, "evalsha", sha, 1, key, rate, 1_000_000_000, cost, 0)
						_ = p.Process(ctx, cmd)
						calls = append(calls, cmd)
					}
				}
				log := p.SlowLogGet(ctx, 2*pairs+8)
				if _, err := p.Exec(ctx); err != nil {
					b.Fatal(err)
				}
				for _, cmd := range calls {
					if v := cmd.Val(); len(v) != 7 || v[0] != 1 {
						b.Fatalf("reply %v: not an admission", v)
					}
				}
				for _, e := range log.Val() {
					if len(e.Args) > 1 && strings.EqualFold(e.Args[0], "evalsha") {
						i := slices.Index(shas, e.Args[1])
						us[i] = append(us[i], float64(e.Duration.Microseconds()))
					}
				}
			}
			batch() // keys hold state from here on
			cost = 1
			if err := c.ConfigResetStat(ctx).Err(); err != nil {
				b.Fatal(err)
			}
			b.ReportAllocs()
			for b.Loop() {
				batch()
			}
			if misses := infoField(b, c, "stats", "keyspace_misses"); misses != "0" {
				b.Fatalf("%s keyspace misses: a call found no state", misses)
			}
			v1, v2 := trimmedMean(us[0]), trimmedMean(us[1])
			b.ReportMetric(v1, "v1-µs/call")
			b.ReportMetric(v2, "new-µs/call")
			b.ReportMetric(v2/v1, "new/v1")
		})
	}
}

// trimmedMean is the mean of the fastest 90% of xs.
func trimmedMean(xs []float64) float64 {
	slices.Sort(xs)
	xs = xs[:max(len(xs)*9/10, 1)]
	s := 0.0
	for _, x := range xs {
		s += x
	}
	return s / float64(len(xs))
}

// infoField returns a field of a section of INFO.
func infoField(tb testing.TB, c *redis.Client, section, field string) string {
	tb.Helper()
	info, err := c.Info(context.Background(), section).Result()
	if err != nil {
		tb.Fatal(err)
	}
	for line := range strings.SplitSeq(info, "\n") {
		if v, ok := strings.CutPrefix(strings.TrimSpace(line), field+":"); ok {
			return v
		}
	}
	tb.Fatalf("INFO %s has no %s", section, field)
	return ""
}
