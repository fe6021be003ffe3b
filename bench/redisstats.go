package bench

import (
	"bufio"
	"context"
	"fmt"
	"strconv"
	"strings"

	"github.com/redis/go-redis/v9"
)

// ServerStats is what a redis-server says it has spent since its last
// CONFIG RESETSTAT: CPU time (INFO cpu) and, per command, calls and
// microseconds (INFO commandstats). A command a script runs is counted
// under its own name too, and its time is also inside the script's.
type ServerStats struct {
	CPU  float64 // used_cpu_user + used_cpu_sys, in seconds, since the server started
	Cmds map[string]CmdStat
}

// A CmdStat is one command's line of INFO commandstats.
type CmdStat struct{ Calls, Usec int64 }

// ScriptCalls is how many scripts the server ran: the calls of EVALSHA
// and EVAL.
func (s ServerStats) ScriptCalls() int64 { return s.Cmds["evalsha"].Calls + s.Cmds["eval"].Calls }

// ResetServerStats zeroes the server's command statistics and returns its
// CPU time so far.
func ResetServerStats(ctx context.Context, c *redis.Client) (ServerStats, error) {
	if err := c.ConfigResetStat(ctx).Err(); err != nil {
		return ServerStats{}, fmt.Errorf("CONFIG RESETSTAT: %w", err)
	}
	return ReadServerStats(ctx, c)
}

// ReadServerStats reads the server's CPU time and command statistics.
func ReadServerStats(ctx context.Context, c *redis.Client) (ServerStats, error) {
	info, err := c.Info(ctx, "cpu", "commandstats").Result()
	if err != nil {
		return ServerStats{}, fmt.Errorf("INFO: %w", err)
	}
	return ParseInfo(info)
}

// ParseInfo reads used_cpu_user, used_cpu_sys and the cmdstat_ lines
// ("cmdstat_evalsha:calls=5000,usec=41000,usec_per_call=8.20,…").
func ParseInfo(info string) (ServerStats, error) {
	s := ServerStats{Cmds: map[string]CmdStat{}}
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
			s.CPU += f
			cpuFields++
		case strings.HasPrefix(k, "cmdstat_"):
			var st CmdStat
			for _, kv := range strings.Split(v, ",") {
				name, val, _ := strings.Cut(kv, "=")
				var err error
				switch name {
				case "calls":
					st.Calls, err = strconv.ParseInt(val, 10, 64)
				case "usec":
					st.Usec, err = strconv.ParseInt(val, 10, 64)
				}
				if err != nil {
					return s, fmt.Errorf("INFO %s: %w", k, err)
				}
			}
			s.Cmds[strings.TrimPrefix(k, "cmdstat_")] = st
		}
	}
	if cpuFields != 2 {
		return s, fmt.Errorf("INFO without used_cpu_user and used_cpu_sys:\n%s", info)
	}
	return s, nil
}
