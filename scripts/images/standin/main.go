// Command standin stands in, on the test swarm only, for a program that cannot run here (an AGPL
// module the Go proxy marks not-to-use, a .NET runner, a connector that needs the internet). It is
// installed under the real program's name and keeps the image contract the service spec relies on:
// it runs as the image's uid, reads every file the real program would read at start (the *_FILE and
// __FILE variables and config-file flags), writes into the program's data directory, answers HTTP
// on the real program's port and its health command. It does none of the program's work, and says so.
//
// Its behaviour comes from the environment the local image sets:
//
//	STANDIN_FOR      what it stands in for (printed at start)
//	STANDIN_LISTEN   addresses to serve HTTP on, comma-separated (":3000")
//	STANDIN_WRITE    directories it must be able to write, comma-separated
//	STANDIN_HEALTH   URL the health sub-command asks ("http://127.0.0.1:3100/ready")
package main

import (
	"fmt"
	"net/http"
	"os"
	"os/signal"
	"path/filepath"
	"strings"
	"syscall"
	"time"
)

func fail(format string, args ...any) {
	fmt.Fprintf(os.Stderr, "standin: "+format+"\n", args...)
	os.Exit(1)
}

func list(name string) []string {
	var out []string
	for _, item := range strings.Split(os.Getenv(name), ",") {
		if item = strings.TrimSpace(item); item != "" {
			out = append(out, item)
		}
	}
	return out
}

// health asks a URL, as `loki -health` and `cloudflared tunnel ready` do, and exits 0 on HTTP 200.
func health(url string) {
	client := http.Client{Timeout: 5 * time.Second}
	resp, err := client.Get(url)
	if err != nil {
		fail("health: %v", err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		fail("health: %s answered %d", url, resp.StatusCode)
	}
	os.Exit(0)
}

// filesToRead are the files the real program reads at start: *_FILE / *__FILE variables, and the
// values of flags that name a config file.
func filesToRead(args []string) []string {
	var files []string
	for _, entry := range os.Environ() {
		name, value, _ := strings.Cut(entry, "=")
		if strings.HasSuffix(name, "_FILE") && value != "" {
			files = append(files, value)
		}
	}
	for i, arg := range args {
		name, value, hasValue := strings.Cut(strings.TrimLeft(arg, "-"), "=")
		lower := strings.ToLower(name)
		if !strings.HasSuffix(lower, "config.file") && lower != "configfile" && lower != "config" && lower != "token-file" {
			continue
		}
		if !hasValue && i+1 < len(args) {
			value = args[i+1]
		}
		if value != "" {
			files = append(files, value)
		}
	}
	return files
}

// answer serves every path: /metrics in Prometheus's text format (one series that says what this
// stands in for, none of the real program's), anything else a plain 200.
func answer(w http.ResponseWriter, r *http.Request) {
	if r.URL.Path == "/metrics" {
		w.Header().Set("Content-Type", "text/plain; version=0.0.4")
		fmt.Fprintf(w, "# HELP standin_info A stand-in serves this target, not the real program.\n"+
			"# TYPE standin_info gauge\nstandin_info{program=%q} 1\n", os.Getenv("STANDIN_FOR"))
		return
	}
	fmt.Fprintln(w, "ok (stand-in)")
}

func main() {
	for i, arg := range os.Args[1:] {
		if arg == "-health" || arg == "ready" { // loki -health; cloudflared tunnel --metrics ADDR ready
			url := os.Getenv("STANDIN_HEALTH")
			for j, flag := range os.Args[1 : i+1] {
				if flag == "--metrics" && j+1 < len(os.Args)-1 {
					url = "http://" + strings.Replace(os.Args[j+2], "0.0.0.0", "127.0.0.1", 1) + "/ready"
				}
			}
			health(url)
		}
	}
	fmt.Printf("standin: stands in for %s (this is not the real program; see README, local images)\n", os.Getenv("STANDIN_FOR"))
	for _, file := range filesToRead(os.Args[1:]) {
		if _, err := os.ReadFile(file); err != nil {
			fail("cannot read %s as uid %d: %v", file, os.Getuid(), err)
		}
	}
	for _, dir := range list("STANDIN_WRITE") {
		probe := filepath.Join(dir, ".standin-write-check")
		if err := os.WriteFile(probe, []byte("ok\n"), 0o600); err != nil {
			fail("cannot write in %s as uid %d: %v", dir, os.Getuid(), err)
		}
		os.Remove(probe)
	}
	for _, address := range list("STANDIN_LISTEN") {
		server := &http.Server{Addr: address, ReadHeaderTimeout: 5 * time.Second, Handler: http.HandlerFunc(answer)}
		go func() {
			if err := server.ListenAndServe(); err != nil {
				fail("listen %s: %v", server.Addr, err)
			}
		}()
	}
	stop := make(chan os.Signal, 1)
	signal.Notify(stop, syscall.SIGTERM, syscall.SIGINT)
	<-stop
}
