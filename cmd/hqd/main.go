// Command hqd is the HQ daemon: see README.md and `hqd serve --help`.
package main

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/signal"
	"syscall"

	"github.com/quantapix/hqd/internal/lake"
	"github.com/quantapix/hqd/internal/lake/jobexec"
)

func jobRun() error {
	self, err := os.Executable()
	if err != nil {
		return err
	}
	return lake.Serve(os.Stdin, self)
}

func main() {
	if len(os.Args) > 1 && os.Args[1] == "job-exec" {
		// hqd re-run as a job's helper: its sandbox and init (internal/lake).
		os.Exit(jobexec.Main(os.Args[2:]))
	}
	if len(os.Args) > 1 && os.Args[1] == "job-run" {
		// hqd started by systemd in an hqd-job@ unit: one run, asked for on
		// the connection that is its stdin (internal/lake.Serve).
		if err := jobRun(); err != nil {
			fmt.Fprintf(os.Stderr, "hqd job-run: %v\n", err)
			os.Exit(1)
		}
		return
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if err := run(ctx, os.Args[1:], os.Getenv, os.Environ(), os.Stdout, os.Stderr); err != nil {
		if errors.Is(err, errHelp) {
			return
		}
		fmt.Fprintf(os.Stderr, "hqd: %v\n", err)
		os.Exit(1)
	}
}
