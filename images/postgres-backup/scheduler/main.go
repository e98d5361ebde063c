// Command backup-cron is the backup image's scheduler: `backup-cron "SCHEDULE" COMMAND [ARGS...]`
// runs COMMAND on the five-field cron SCHEDULE (robfig/cron), never two runs at once, with the
// container's environment. On SIGTERM or SIGINT it lets a running backup finish, then exits.
//
// With METRICS_ADDR (e.g. ":9199") it serves Prometheus metrics at /metrics: when it started, when
// the last run ended and whether it succeeded, when the last success was, run counts, and whether
// its backups leave the swarm (BACKUP_OFF_SITE=true, set by the program with an off-site target).
// With METRICS_TEXTFILE_DIR it appends every *.prom file there, which other jobs in the container
// write (the WAL shipper), the way node-exporter's textfile collector reads them.
package main

import (
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"sort"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/robfig/cron/v3"
)

// runs is what the metrics report; Prometheus alerts on it (configs/prometheus/rules/alerts.yml).
type runs struct {
	mu          sync.Mutex
	started     time.Time
	lastRun     time.Time
	lastSuccess time.Time
	lastOK      bool
	successes   int
	failures    int
}

func (r *runs) record(ok bool) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.lastRun, r.lastOK = time.Now(), ok
	if ok {
		r.lastSuccess = r.lastRun
		r.successes++
	} else {
		r.failures++
	}
}

func seconds(t time.Time) float64 {
	if t.IsZero() {
		return 0
	}
	return float64(t.UnixNano()) / 1e9
}

func (r *runs) ServeHTTP(w http.ResponseWriter, _ *http.Request) {
	r.mu.Lock()
	defer r.mu.Unlock()
	w.Header().Set("Content-Type", "text/plain; version=0.0.4")
	gauge := func(name, help string, value float64) {
		fmt.Fprintf(w, "# HELP %s %s\n# TYPE %s gauge\n%s %g\n", name, help, name, name, value)
	}
	gauge("nextcandle_backup_scheduler_start_timestamp_seconds", "When this scheduler started.", seconds(r.started))
	offSite := 0.0
	if os.Getenv("BACKUP_OFF_SITE") == "true" {
		offSite = 1
	}
	gauge("nextcandle_backup_off_site", "1 if the backups go to an off-site S3 target, 0 if they stay on the swarm's own object store.", offSite)
	gauge("nextcandle_backup_last_run_timestamp_seconds", "When the last scheduled run ended (0: none yet).", seconds(r.lastRun))
	gauge("nextcandle_backup_last_success_timestamp_seconds", "When the last successful run ended (0: none yet).", seconds(r.lastSuccess))
	if !r.lastRun.IsZero() {
		ok := 0.0
		if r.lastOK {
			ok = 1
		}
		gauge("nextcandle_backup_last_run_success", "1 if the last run succeeded, 0 if it failed.", ok)
	}
	fmt.Fprintf(w, "# HELP nextcandle_backup_runs_total Scheduled runs since start, by result.\n# TYPE nextcandle_backup_runs_total counter\n")
	fmt.Fprintf(w, "nextcandle_backup_runs_total{result=\"success\"} %d\nnextcandle_backup_runs_total{result=\"failure\"} %d\n", r.successes, r.failures)
	writeTextfiles(w, os.Getenv("METRICS_TEXTFILE_DIR"))
}

// writeTextfiles appends dir's *.prom files in name order; their writers replace them by renaming,
// so a file is never read half-written.
func writeTextfiles(w http.ResponseWriter, dir string) {
	if dir == "" {
		return
	}
	files, _ := filepath.Glob(filepath.Join(dir, "*.prom"))
	sort.Strings(files)
	for _, file := range files {
		if strings.HasPrefix(filepath.Base(file), ".") { // being written
			continue
		}
		if content, err := os.ReadFile(file); err == nil {
			w.Write(content)
		}
	}
}

func main() {
	if len(os.Args) < 3 {
		fmt.Fprintln(os.Stderr, "usage: backup-cron SCHEDULE COMMAND [ARGS...]")
		os.Exit(2)
	}
	state := &runs{started: time.Now()}
	scheduler := cron.New(cron.WithChain(cron.SkipIfStillRunning(cron.DiscardLogger)))
	_, err := scheduler.AddFunc(os.Args[1], func() {
		command := exec.Command(os.Args[2], os.Args[3:]...)
		command.Stdout, command.Stderr = os.Stdout, os.Stderr
		err := command.Run()
		if err != nil {
			fmt.Fprintf(os.Stderr, "backup-cron: %v\n", err)
		}
		state.record(err == nil)
	})
	if err != nil {
		fmt.Fprintf(os.Stderr, "backup-cron: bad schedule %q: %v\n", os.Args[1], err)
		os.Exit(2)
	}
	if addr := os.Getenv("METRICS_ADDR"); addr != "" {
		mux := http.NewServeMux()
		mux.Handle("/metrics", state)
		go func() {
			if err := http.ListenAndServe(addr, mux); err != nil {
				fmt.Fprintf(os.Stderr, "backup-cron: metrics on %s: %v\n", addr, err)
			}
		}()
	}
	scheduler.Start()
	stop := make(chan os.Signal, 1)
	signal.Notify(stop, syscall.SIGTERM, syscall.SIGINT)
	<-stop
	<-scheduler.Stop().Done()
}
