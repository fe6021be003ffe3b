package bench

import (
	"bufio"
	"context"
	"fmt"
	"math"
	"strconv"
	"strings"
	"testing"

	"github.com/redis/go-redis/v9"
)

// serverStats is what a redis-server says it has spent since its last
// CONFIG RESETSTAT: CPU time (INFO cpu) and, per command, calls and
// microseconds (INFO commandstats). A command a script runs is counted
// under its own name too, and its time is also inside the script's.
type serverStats struct {
	cpu  float64 // used_cpu_user + used_cpu_sys, in seconds, since the server started
	cmds map[string]cmdStat
}

type cmdStat struct{ calls, usec int64 }

// writeCommands are the commands the implementations write their state
// with: floodgate and redis_rate SET from their scripts, ulule INCRBY and
// PEXPIRE.
var writeCommands = []string{"set", "incr", "incrby", "pexpire", "expire"}

// adminCommands are the stats' own commands, left out of the figures.
var adminCommands = []string{"info", "config|resetstat"}

// resetServerStats zeroes the server's command statistics and returns its
// CPU time so far.
func resetServerStats(ctx context.Context, c *redis.Client) (serverStats, error) {
	if err := c.ConfigResetStat(ctx).Err(); err != nil {
		return serverStats{}, fmt.Errorf("CONFIG RESETSTAT: %w", err)
	}
	return readServerStats(ctx, c)
}

func readServerStats(ctx context.Context, c *redis.Client) (serverStats, error) {
	info, err := c.Info(ctx, "cpu", "commandstats").Result()
	if err != nil {
		return serverStats{}, fmt.Errorf("INFO: %w", err)
	}
	return parseInfo(info)
}

// parseInfo reads used_cpu_user, used_cpu_sys and the cmdstat_ lines
// ("cmdstat_evalsha:calls=5000,usec=41000,usec_per_call=8.20,…").
func parseInfo(info string) (serverStats, error) {
	s := serverStats{cmds: map[string]cmdStat{}}
	cpuFields := 0
	sc := bufio.NewScanner(strings.NewReader(info))
	for sc.Scan() {
		k, v, ok := strings.Cut(strings.TrimSpace(sc.Text()), ":")
		if !ok {
			continue
		}
		switch {
		case k == "used_cpu_user" || k == "used_cpu_sys":
			f, err := strconv.ParseFloat(v, 64)
			if err != nil {
				return s, fmt.Errorf("INFO %s: %w", k, err)
			}
			s.cpu += f
			cpuFields++
		case strings.HasPrefix(k, "cmdstat_"):
			var st cmdStat
			for _, kv := range strings.Split(v, ",") {
				name, val, _ := strings.Cut(kv, "=")
				var err error
				switch name {
				case "calls":
					st.calls, err = strconv.ParseInt(val, 10, 64)
				case "usec":
					st.usec, err = strconv.ParseInt(val, 10, 64)
				}
				if err != nil {
					return s, fmt.Errorf("INFO %s: %w", k, err)
				}
			}
			s.cmds[strings.TrimPrefix(k, "cmdstat_")] = st
		}
	}
	if cpuFields != 2 {
		return s, fmt.Errorf("INFO without used_cpu_user and used_cpu_sys:\n%s", info)
	}
	return s, nil
}

// serverMetrics turns the stats of n decisions into benchmark metrics:
// srv-cpu-us/op (the server's CPU time per decision), writes/op (calls of
// writeCommands per decision), and for each command it ran,
// <command>-calls/op and <command>-us/call.
func serverMetrics(before, after serverStats, n int) map[string]float64 {
	m := map[string]float64{"srv-cpu-us/op": (after.cpu - before.cpu) * 1e6 / float64(n)}
	writes := int64(0)
	for name, st := range after.cmds {
		if st.calls == 0 || contains(adminCommands, name) {
			continue
		}
		if contains(writeCommands, name) {
			writes += st.calls
		}
		m[name+"-calls/op"] = float64(st.calls) / float64(n)
		m[name+"-us/call"] = float64(st.usec) / float64(st.calls)
	}
	m["writes/op"] = float64(writes) / float64(n)
	return m
}

func contains(xs []string, x string) bool {
	for _, y := range xs {
		if x == y {
			return true
		}
	}
	return false
}

func TestServerMetrics(t *testing.T) {
	before, err := parseInfo("# CPU\r\nused_cpu_sys:1.500000\r\nused_cpu_user:2.000000\r\n")
	if err != nil {
		t.Fatal(err)
	}
	after, err := parseInfo("# CPU\r\nused_cpu_sys:1.510000\r\nused_cpu_user:2.010000\r\n# Commandstats\r\n" +
		"cmdstat_evalsha:calls=1000,usec=8200,usec_per_call=8.20,rejected_calls=0,failed_calls=0\r\n" +
		"cmdstat_set:calls=1000,usec=1100,usec_per_call=1.10,rejected_calls=0,failed_calls=0\r\n" +
		"cmdstat_pexpire:calls=500,usec=500,usec_per_call=1.00,rejected_calls=0,failed_calls=0\r\n" +
		"cmdstat_info:calls=1,usec=50,usec_per_call=50.00,rejected_calls=0,failed_calls=0\r\n")
	if err != nil {
		t.Fatal(err)
	}
	m := serverMetrics(before, after, 1000)
	for unit, want := range map[string]float64{
		"srv-cpu-us/op": 20, "writes/op": 1.5, "evalsha-calls/op": 1, "evalsha-us/call": 8.2, "set-us/call": 1.1, "pexpire-calls/op": 0.5,
	} {
		if got := m[unit]; math.Abs(got-want) > 1e-6 {
			t.Errorf("%s = %v, want %v (all: %v)", unit, got, want, m)
		}
	}
	if _, ok := m["info-calls/op"]; ok {
		t.Errorf("the stats' own INFO is counted: %v", m)
	}
	if _, err := parseInfo("cmdstat_get:calls=1,usec=1\r\n"); err == nil {
		t.Error("parseInfo without INFO cpu: no error")
	}
}
