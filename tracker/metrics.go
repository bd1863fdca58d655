package tracker

import (
	"bytes"
	"context"
	"strconv"
	"strings"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/mogway/mogway/internal/metrics"
	"github.com/mogway/mogway/tracker/worker"
)

// trackerMetrics is the tracker's private registry. Commands are counted as they are answered;
// everything else is read at scrape time from Stats, the cached cluster state and the store.
type trackerMetrics struct {
	reg     *prometheus.Registry
	results *prometheus.CounterVec
	byName  map[string]commandMetrics // by command name, for the names in commands
	unknown commandMetrics            // lines that name no command
}

// commandMetrics is one command's label, latency observer and count of OK answers, looked up once
// per answered line. The label is kept so that counting a known command does not copy its name
// from the line; the OK counter, so that the common answer skips the label lookup of results.
type commandMetrics struct {
	name    string
	latency prometheus.Observer
	ok      prometheus.Counter
}

// unknownCommand is the command label of lines that name no command.
const unknownCommand = "unknown"

func (s *Server) initMetrics() {
	m := &s.metrics
	m.reg = metrics.NewRegistry()
	m.results = prometheus.NewCounterVec(prometheus.CounterOpts{
		Namespace: metrics.Namespace, Subsystem: "tracker", Name: "commands_total",
		Help: `Query commands answered, by command and result ("ok" or the ERR code).`,
	}, []string{"command", "result"})
	hist := metrics.LatencyHistogram("tracker", "command_duration_seconds",
		"Time to answer a query command once a query worker took it.", "command")
	m.byName = make(map[string]commandMetrics, len(commands))
	for name := range commands {
		m.byName[name] = commandMetrics{name, hist.WithLabelValues(name), m.results.WithLabelValues(name, "ok")}
	}
	m.unknown = commandMetrics{unknownCommand, hist.WithLabelValues(unknownCommand), m.results.WithLabelValues(unknownCommand, "ok")}
	m.reg.MustRegister(m.results, hist, s.collector())
}

// countCommand records one answered query line and its reply.
func (s *Server) countCommand(line string, reply []byte, d time.Duration) {
	name, _, _ := strings.Cut(line, " ")
	cm, ok := s.metrics.byName[name]
	if !ok {
		cm = s.metrics.unknown
	}
	cm.latency.Observe(d.Seconds())
	rest, isErr := bytes.CutPrefix(reply, []byte("ERR "))
	if !isErr {
		cm.ok.Inc()
		return
	}
	code, _, _ := bytes.Cut(rest, []byte{' '})
	s.metrics.results.WithLabelValues(cm.name, string(bytes.TrimRight(code, "\r\n"))).Inc()
}

// collector exports the tracker's counters and the cluster as this tracker sees it.
func (s *Server) collector() prometheus.Collector {
	c := &metrics.Collector{}
	const sub = "tracker"
	conns := c.Desc(sub, "connections", "Client connections open now.")
	accepted := c.Desc(sub, "connections_accepted_total", "Client connections accepted.")
	waited := c.Desc(sub, "queries_waited_total", "Queries that waited because every query worker was busy.")
	tooLong := c.Desc(sub, "lines_too_long_total", "Request lines refused for exceeding max_line.")
	workers := c.Desc(sub, "query_workers", "Query workers configured (query_workers).")
	busy := c.Desc(sub, "query_workers_busy", "Query workers running a query now.")
	pending := c.Desc(sub, "queries_pending", "Queries waiting for a query worker.")
	queue := c.Desc(sub, "queue_length", "Rows in a work queue (due or not).", "queue")
	hosts := c.Desc(sub, "hosts", "Storage hosts by administrative status.", "status")
	devices := c.Desc(sub, "devices", "Devices by administrative status and observed state (writeable, readable, unreachable, unknown).", "status", "observed")
	devTotal := c.Desc(sub, "device_total_bytes", "Size of a device as last reported by its node.", "device", "host")
	devUsed := c.Desc(sub, "device_used_bytes", "Bytes used on a device as last reported by its node.", "device", "host")
	devUp := c.Desc(sub, "device_up", "1 if the monitor reached the device in its last probe, 0 if not.", "device", "host")
	devWritable := c.Desc(sub, "device_writable", "1 if the device's last test write succeeded, 0 if not.", "device", "host")
	files := c.Desc(sub, "files", "Files per domain and class.", "domain", "class")
	minDev := c.Desc(sub, "class_mindevcount", "The copies a class asks for (mindevcount).", "domain", "class")
	rounds := c.Desc(sub, "worker_passes_total", "Completed passes of a background worker.", "worker")
	lastFailed := c.Desc(sub, "worker_last_pass_failed", "1 if the worker's last pass failed, 0 if not.", "worker")
	work := c.Desc(sub, "worker_events_total", "Work done by the background workers, by kind (see docs/monitoring.md).", "event")
	fsckRunning := c.Desc(sub, "fsck_running", "1 while fsck runs (on any tracker), 0 otherwise.")
	fsckChecked := c.Desc(sub, "fsck_checked_fid", "The highest fid fsck has checked.")
	fsckEnd := c.Desc(sub, "fsck_end_fid", "The highest fid when fsck started: it is done when fsck_checked_fid reaches it.")
	dbRead := c.Desc(sub, "scrape_db_read_seconds", "Time the store took to answer this scrape's reads (file counts and queue lengths).")
	dbErrors := c.Desc(sub, "scrape_db_errors", "Store reads that failed during this scrape.")
	c.Func = func(ch chan<- prometheus.Metric) {
		st := s.Stats()
		metrics.Gauge(ch, conns, float64(st.Connections))
		metrics.Counter(ch, accepted, float64(st.Accepted))
		metrics.Counter(ch, waited, float64(st.OutOfWorkers))
		metrics.Counter(ch, tooLong, float64(st.TooLong))
		ctx, cancel := context.WithTimeout(s.stopCtx, 10*time.Second)
		defer cancel()
		v := s.View(ctx)
		metrics.Gauge(ch, workers, float64(v.Queries.Workers))
		metrics.Gauge(ch, busy, float64(v.Queries.Processing))
		metrics.Gauge(ch, pending, float64(v.Queries.Pending))
		for name, n := range map[string]int64{"replicate": v.Queues.Replicate, "delete": v.Queues.Delete,
			"fsck": v.Queues.Fsck, "rebalance": v.Queues.Rebalance} {
			if n >= 0 {
				metrics.Gauge(ch, queue, float64(n), name)
			}
		}
		hostCount := map[string]int{}
		for _, h := range v.Hosts {
			hostCount[h.Status]++
		}
		for status, n := range hostCount {
			metrics.Gauge(ch, hosts, float64(n), status)
		}
		type devKey struct{ status, observed string }
		devCount := map[devKey]int{}
		for _, d := range v.Devices {
			obs := d.Observed
			if obs == "" {
				obs = "unknown"
			}
			devCount[devKey{d.Status, obs}]++
			metrics.Gauge(ch, devUp, metrics.Bool(d.Observed == observedReadable || d.Observed == observedWriteable), d.Name, d.Host)
			metrics.Gauge(ch, devWritable, metrics.Bool(d.Observed == observedWriteable), d.Name, d.Host)
			if d.TotalMB > 0 {
				metrics.Gauge(ch, devTotal, float64(d.TotalMB<<20), d.Name, d.Host)
				metrics.Gauge(ch, devUsed, float64(d.UsedMB<<20), d.Name, d.Host)
			}
		}
		for k, n := range devCount {
			metrics.Gauge(ch, devices, float64(n), k.status, k.observed)
		}
		for _, d := range v.Domains {
			for _, cl := range d.Classes {
				metrics.Gauge(ch, minDev, float64(cl.MinDevCount), d.Name, cl.Name)
				if cl.Files >= 0 {
					metrics.Gauge(ch, files, float64(cl.Files), d.Name, cl.Name)
				}
			}
		}
		for _, w := range v.Workers {
			metrics.Counter(ch, rounds, float64(w.Runs), w.Name)
			metrics.Gauge(ch, lastFailed, metrics.Bool(w.LastErr != ""), w.Name)
		}
		if ws, ok := s.background().(interface{ Stats() worker.Stats }); ok {
			w := ws.Stats()
			for name, n := range map[string]uint64{
				"monitor_rounds": w.MonitorRounds, "usage_updates": w.UsageUpdates,
				"replicated": w.Replicated, "replicated_bytes": w.ReplicatedBytes, "replicate_done": w.ReplicateDone,
				"replicate_retries": w.ReplicateRetries, "replicate_parked": w.ReplicateParked,
				"copy_errors": w.CopyErrors, "surplus_removed": w.SurplusRemoved,
				"deleted_copies": w.DeletedCopies, "delete_done": w.DeleteDone, "delete_retries": w.DeleteRetries,
				"reaped": w.Reaped, "tempfiles_reaped": w.TempfilesReaped,
				"fsck_checked": w.FsckChecked, "fsck_events": w.FsckEvents, "panics": w.Panics,
				"lock_busy": w.LockBusy, "rebalanced": w.Rebalanced,
			} {
				metrics.Counter(ch, work, float64(n), name)
			}
		}
		metrics.Gauge(ch, fsckRunning, metrics.Bool(v.Fsck.Running))
		metrics.Gauge(ch, fsckChecked, float64(v.Fsck.MaxFidChecked))
		metrics.Gauge(ch, fsckEnd, float64(v.Fsck.EndFid))
		metrics.Gauge(ch, dbRead, v.DBReadIn.Seconds())
		metrics.Gauge(ch, dbErrors, float64(len(v.Errors)))
	}
	return c
}

// devLabel is the device label of a device id, as the status page names it.
func devLabel(id int) string { return "dev" + strconv.Itoa(id) }
