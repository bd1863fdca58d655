package main

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"time"
)

// The two-core rows show how each side scales with a second core: the servers of both sides may run on
// CPUs 0 and 1 (nginx with two worker processes, mogway with GOMAXPROCS=2), and so does the load
// generator, because this machine has two cores: wrk takes its share of them on both sides alike.
const twoCPUs = "0,1"

// Gateways and nginx server blocks of the two-core rows.
const (
	gw2Cache   = 18085 // as gwCache
	gw2NoCache = 18086 // as gwNoCache
)

var ngx2 = nginxPorts{Static: 18095, Proxy: 18096, Cache: 18097, Upload: 18098}

// startTwoCores starts, once, the gateways and the nginx of the two-core rows on CPUs 0 and 1.
func (c *cluster) startTwoCores() error {
	if c.nginx2 != nil {
		return nil
	}
	for port, yaml := range map[int]string{gw2Cache: gatewayYAML(gw2Cache, true, true), gw2NoCache: gatewayYAML(gw2NoCache, false, true)} {
		if err := c.startGateway(port, yaml, twoCPUs, []string{"GOMAXPROCS=2"}); err != nil {
			return err
		}
	}
	dir := filepath.Join(c.work, "nginx2")
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return err
	}
	conf, err := writeNginxConf(dir, filepath.Join(c.work, "node1"), []string{nodeA, nodeB}, ngx2, 2)
	if err != nil {
		return err
	}
	c.nginx2, err = start(dir, "nginx", twoCPUs, nil, "nginx", "-c", conf, "-p", dir)
	if err != nil {
		return err
	}
	for _, p := range []int{ngx2.Static, ngx2.Proxy, ngx2.Cache, ngx2.Upload} {
		if err := waitPort(fmt.Sprintf("127.0.0.1:%d", p), 10*time.Second); err != nil {
			return err
		}
	}
	return nil
}

// pin moves every thread of the processes ps to cpus (taskset -a -p). A Go daemon follows its CPU
// affinity with GOMAXPROCS within about a second.
func pin(cpus string, ps ...*proc) error {
	for _, pid := range pids(ps...) {
		if out, err := exec.Command("taskset", "-a", "-p", "-c", cpus, strconv.Itoa(pid)).CombinedOutput(); err != nil {
			return fmt.Errorf("taskset %d: %v: %s", pid, err, out)
		}
	}
	return nil
}

// twoCores compares the two-core gateway on port (mogPath) with the two-worker nginx on ngxPort
// (refPath). The storage nodes and the tracker run on both CPUs for the row, and back on CPU 0 after.
func (c *cluster) twoCores(name, mogPath, refPath string, port, ngxPort int, refName string) (row, error) {
	if err := c.startTwoCores(); err != nil {
		return row{}, err
	}
	shared := []*proc{c.tracker, c.nodes[0], c.nodes[1]}
	if err := pin(twoCPUs, shared...); err != nil {
		return row{}, err
	}
	defer pin(serverCPUs, shared...) //nolint:errcheck // a node left on two CPUs only skews later rows
	time.Sleep(1500 * time.Millisecond)
	return c.ab(abRun{name: name, mogURL: localURL(port, mogPath), refURL: localURL(ngxPort, refPath), refName: refName,
		mog: c.mogSide(c.gateways[port]), ref: c.refSide(c.nginx2), pprof: pprofAddr(port), loadCPUs: twoCPUs,
		lookups: [2]bool{trackerRoute(mogPath), false}})
}
