// Command backup-cron is the backup image's scheduler: `backup-cron "SCHEDULE" COMMAND [ARGS...]`
// runs COMMAND on the five-field cron SCHEDULE (robfig/cron), never two runs at once, with the
// container's environment. On SIGTERM or SIGINT it lets a running backup finish, then exits.
package main

import (
	"fmt"
	"os"
	"os/exec"
	"os/signal"
	"syscall"

	"github.com/robfig/cron/v3"
)

func main() {
	if len(os.Args) < 3 {
		fmt.Fprintln(os.Stderr, "usage: backup-cron SCHEDULE COMMAND [ARGS...]")
		os.Exit(2)
	}
	scheduler := cron.New(cron.WithChain(cron.SkipIfStillRunning(cron.DiscardLogger)))
	_, err := scheduler.AddFunc(os.Args[1], func() {
		command := exec.Command(os.Args[2], os.Args[3:]...)
		command.Stdout, command.Stderr = os.Stdout, os.Stderr
		if err := command.Run(); err != nil {
			fmt.Fprintf(os.Stderr, "backup-cron: %v\n", err)
		}
	})
	if err != nil {
		fmt.Fprintf(os.Stderr, "backup-cron: bad schedule %q: %v\n", os.Args[1], err)
		os.Exit(2)
	}
	scheduler.Start()
	stop := make(chan os.Signal, 1)
	signal.Notify(stop, syscall.SIGTERM, syscall.SIGINT)
	<-stop
	<-scheduler.Stop().Done()
}
