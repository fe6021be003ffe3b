package redistest

import (
	"bufio"
	"bytes"
	"net"
	"os/exec"
	"strconv"
	"strings"
	"testing"
	"time"
)

// A Cluster is three redis-server masters on loopback forming a Redis
// Cluster (no replicas), covering all 16384 slots.
type Cluster struct {
	Servers []*Server
}

// Addrs returns the masters' host:port addresses.
func (c *Cluster) Addrs() []string {
	addrs := make([]string, len(c.Servers))
	for i, s := range c.Servers {
		addrs[i] = s.Addr()
	}
	return addrs
}

// StartCluster starts three cluster-enabled servers, joins them with
// redis-cli --cluster create, waits until every node reports
// cluster_state:ok, and stops them when tb ends. Extra arguments are
// passed to every redis-server.
func StartCluster(tb testing.TB, extra ...string) *Cluster {
	tb.Helper()
	Need(tb, "redis-server", "redis-cli")
	c := &Cluster{}
	for i := range 3 {
		args := append([]string{"--cluster-enabled", "yes",
			"--cluster-config-file", "nodes-" + strconv.Itoa(i) + ".conf", "--cluster-node-timeout", "2000"}, extra...)
		c.Servers = append(c.Servers, Start(tb, args...))
	}
	args := append([]string{"--cluster", "create"}, c.Addrs()...)
	args = append(args, "--cluster-replicas", "0", "--cluster-yes")
	out, err := runTied(exec.Command("redis-cli", args...))
	if err != nil {
		tb.Fatalf("redistest: redis-cli --cluster create: %v\n%s", err, out)
	}
	deadline := time.Now().Add(20 * time.Second)
	for _, s := range c.Servers {
		for !clusterOK(s.Addr()) {
			if time.Now().After(deadline) {
				tb.Fatalf("redistest: cluster node %s not ok after 20s", s.Addr())
			}
			time.Sleep(50 * time.Millisecond)
		}
	}
	return c
}

// clusterOK reports whether the node at addr says cluster_state:ok.
func clusterOK(addr string) bool {
	c, err := net.DialTimeout("tcp", addr, time.Second)
	if err != nil {
		return false
	}
	defer c.Close()
	c.SetDeadline(time.Now().Add(time.Second))
	if _, err := c.Write([]byte("CLUSTER INFO\r\n")); err != nil {
		return false
	}
	r := bufio.NewReader(c)
	if _, err := r.ReadString('\n'); err != nil { // $<len>
		return false
	}
	line, err := r.ReadString('\n')
	return err == nil && strings.HasPrefix(line, "cluster_state:ok")
}

// runTied runs cmd to completion like CombinedOutput, tied to the test
// process as servers are (startTied): redis-cli --cluster create can wait
// on the nodes for seconds, and must not outlive a test that dies meanwhile.
func runTied(cmd *exec.Cmd) ([]byte, error) {
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	exited, err := startTied(cmd)
	if err != nil {
		return nil, err
	}
	err = <-exited
	return out.Bytes(), err
}
