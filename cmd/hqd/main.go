// Command hqd is the HQ daemon: see README.md and `hqd serve --help`.
package main

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/signal"
	"syscall"

	"github.com/quantapix/hqd/internal/lake/jobexec"
)

func main() {
	if len(os.Args) > 1 && os.Args[1] == "job-exec" {
		// hqd re-run as a job's helper: join the cgroups, drop privileges,
		// become lake (internal/lake).
		os.Exit(jobexec.Main(os.Args[2:]))
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
