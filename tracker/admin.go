package tracker

import (
	"fmt"
	"os"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/mogway/mogway/tracker/worker"
)

// Version is what `!version` prints.
const Version = "mogway (MogileFS tracker protocol 2.73)"

const adminHelp = "mogway tracker admin commands:\n" +
	"    !version              print the server version\n" +
	"    !stats                server counters\n" +
	"    !jobs                 background workers\n" +
	"    !want <n> <job>       change a worker count (mogway: set it in the config file)\n" +
	"    !to <job> <message>   send a message to workers\n" +
	"    !queue                queries waiting for a query slot\n" +
	"    !recent               the last 50 queries with their run times\n" +
	"    !watch                toggle streaming of errors to this connection\n" +
	"    !shutdown             stop the tracker (needs tracker.allow_shutdown: true)\n"

// admin answers a `!` line (spec 2.7): text lines each ending in CRLF, then a line holding ".".
// Admin commands never wait for a query slot, so they answer while every query is busy.
func (s *Server) admin(c *conn, line string) []byte {
	fields := strings.Fields(line[1:])
	cmd := ""
	if len(fields) > 0 {
		cmd = strings.ToLower(fields[0])
	}
	var lines []string
	switch {
	case cmd == "version":
		lines = []string{Version}
	case cmd == "stats":
		lines = s.adminStats()
	case cmd == "jobs":
		lines = s.adminJobs()
	case cmd == "want":
		lines = []string{"ERROR: mogway runs a fixed set of workers; set tracker.query_workers and tracker.workers in the config file"}
	case cmd == "to":
		lines = []string{"Message sent to 0 children."}
	case strings.HasPrefix(cmd, "queue") || strings.HasPrefix(cmd, "pend"):
		s.mu.Lock()
		for pc, l := range s.pending {
			lines = append(lines, ipString(pc.ip)+" "+l)
		}
		s.mu.Unlock()
		sort.Strings(lines)
	case cmd == "recent":
		s.mu.Lock()
		rs := make([]recentQuery, 0, len(s.recent))
		rs = append(rs, s.recent[s.recentAt:]...)
		rs = append(rs, s.recent[:s.recentAt]...)
		s.mu.Unlock()
		for _, r := range rs {
			lines = append(lines, fmt.Sprintf("%s %.4f %s %s", r.at.UTC().Format(time.RFC3339), r.dur.Seconds(), r.ip, r.line))
		}
	case cmd == "watch":
		s.mu.Lock()
		if _, on := s.watchers[c]; on {
			delete(s.watchers, c)
			lines = []string{"Removed you from watcher list."}
		} else {
			s.watchers[c] = struct{}{}
			lines = []string{"Added you to watcher list."}
		}
		s.mu.Unlock()
	case cmd == "shutdown":
		if !s.cfg.AllowShutdown {
			lines = []string{"ERROR: !shutdown is disabled; set tracker.allow_shutdown: true to allow it"}
		} else {
			s.log.Info("shutting down on !shutdown", "from", ipString(c.ip))
			s.requestShutdown()
			lines = []string{"Shutting down."}
		}
	default:
		return []byte(adminHelp + ".\r\n")
	}
	var b strings.Builder
	for _, l := range lines {
		b.WriteString(l)
		b.WriteString("\r\n")
	}
	b.WriteString(".\r\n")
	return []byte(b.String())
}

func (s *Server) adminStats() []string {
	st := s.Stats()
	bored := int64(s.cfg.QueryWorkers) - st.Processing
	if bored < 0 {
		bored = 0
	}
	lines := []string{
		"uptime " + strconv.FormatInt(int64(time.Since(s.started).Seconds()), 10),
		"pending_queries " + strconv.FormatInt(st.Pending, 10),
		"processing_queries " + strconv.FormatInt(st.Processing, 10),
		"bored_queryworkers " + strconv.FormatInt(bored, 10),
	}
	counters := map[string]int64{
		"queries":               st.Queries,
		"query_errors":          st.Errors,
		"times_out_of_qworkers": st.OutOfWorkers,
		"connections":           st.Connections,
		"connections_accepted":  st.Accepted,
		"lines_too_long":        st.TooLong,
	}
	if bg := s.background(); bg != nil {
		for name, j := range bg.Jobs() {
			counters["work_sent_to_"+name] = int64(j.Runs)
		}
		if ws, ok := bg.(interface{ Stats() worker.Stats }); ok {
			w := ws.Stats()
			for k, v := range map[string]uint64{
				"monitor_rounds":    w.MonitorRounds,
				"replicated":        w.Replicated,
				"replicate_retries": w.ReplicateRetries,
				"replicate_parked":  w.ReplicateParked,
				"deleted_copies":    w.DeletedCopies,
				"delete_retries":    w.DeleteRetries,
				"reaped":            w.Reaped,
				"tempfiles_reaped":  w.TempfilesReaped,
				"fsck_checked":      w.FsckChecked,
				"worker_panics":     w.Panics,
			} {
				counters[k] = int64(v)
			}
		}
	}
	names := make([]string, 0, len(counters))
	for k := range counters {
		names = append(names, k)
	}
	sort.Strings(names)
	for _, k := range names {
		lines = append(lines, k+" "+strconv.FormatInt(counters[k], 10))
	}
	if s.moreStats != nil {
		lines = append(lines, s.moreStats()...)
	}
	return lines
}

// AddStats makes `!stats` end with the "name value" lines f returns, such as the state of
// components the tracker does not own (the SQLite replicator). Call it before Serve; f is called
// from connection goroutines, concurrently.
func (s *Server) AddStats(f func() []string) { s.moreStats = f }

func (s *Server) adminJobs() []string {
	pid := strconv.Itoa(os.Getpid())
	lines := []string{
		"queryworker count " + strconv.Itoa(s.cfg.QueryWorkers),
		"queryworker desired " + strconv.Itoa(s.cfg.QueryWorkers),
		"queryworker pids " + pid,
	}
	if bg := s.background(); bg != nil {
		jobs := bg.Jobs()
		names := make([]string, 0, len(jobs))
		for k := range jobs {
			names = append(names, k)
		}
		sort.Strings(names)
		for _, n := range names {
			j := jobs[n]
			lines = append(lines,
				n+" count "+strconv.Itoa(j.Count),
				n+" desired "+strconv.Itoa(j.Desired),
				n+" pids "+pid)
		}
	}
	return lines
}
