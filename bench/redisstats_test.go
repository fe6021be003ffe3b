package bench

import (
	"math"
	"slices"
	"testing"
)

// writeCommands are the commands the implementations write their state
// with: floodgate and redis_rate SET from their scripts, ulule INCRBY and
// PEXPIRE.
var writeCommands = []string{"set", "incr", "incrby", "pexpire", "expire"}

// adminCommands are the stats' own commands, left out of the figures.
var adminCommands = []string{"info", "config|resetstat"}

// serverMetrics turns the stats of n decisions into benchmark metrics:
// srv-cpu-us/op (the server's CPU time per decision), writes/op (calls of
// writeCommands per decision), and for each command it ran,
// <command>-calls/op and <command>-us/call.
func serverMetrics(before, after ServerStats, n int) map[string]float64 {
	m := map[string]float64{"srv-cpu-us/op": (after.CPU - before.CPU) * 1e6 / float64(n)}
	writes := int64(0)
	for name, st := range after.Cmds {
		if st.Calls == 0 || slices.Contains(adminCommands, name) {
			continue
		}
		if slices.Contains(writeCommands, name) {
			writes += st.Calls
		}
		m[name+"-calls/op"] = float64(st.Calls) / float64(n)
		m[name+"-us/call"] = float64(st.Usec) / float64(st.Calls)
	}
	m["writes/op"] = float64(writes) / float64(n)
	return m
}

func TestServerMetrics(t *testing.T) {
	before, err := ParseInfo("# CPU\r\nused_cpu_sys:1.500000\r\nused_cpu_user:2.000000\r\n")
	if err != nil {
		t.Fatal(err)
	}
	after, err := ParseInfo("# CPU\r\nused_cpu_sys:1.510000\r\nused_cpu_user:2.010000\r\n# Commandstats\r\n" +
		"cmdstat_evalsha:calls=1000,usec=8200,usec_per_call=8.20,rejected_calls=0,failed_calls=0\r\n" +
		"cmdstat_set:calls=1000,usec=1100,usec_per_call=1.10,rejected_calls=0,failed_calls=0\r\n" +
		"cmdstat_pexpire:calls=500,usec=500,usec_per_call=1.00,rejected_calls=0,failed_calls=0\r\n" +
		"cmdstat_info:calls=1,usec=50,usec_per_call=50.00,rejected_calls=0,failed_calls=0\r\n")
	if err != nil {
		t.Fatal(err)
	}
	if got := after.ScriptCalls() - before.ScriptCalls(); got != 1000 {
		t.Errorf("ScriptCalls: %d more, want 1000", got)
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
	if _, err := ParseInfo("cmdstat_get:calls=1,usec=1\r\n"); err == nil {
		t.Error("ParseInfo without INFO cpu: no error")
	}
}
