// Command hqd-job-exec is hqd's job helper on its own (internal/lake/jobexec):
// a binary of about 1.5 MB that starts in about 1 ms, where hqd itself,
// with all its packages to initialise, takes about 6. `make build` embeds
// it in hqd (internal/lake/helper); it is not installed on its own.
package main

import (
	"fmt"
	"os"

	"github.com/quantapix/hqd/internal/lake/jobexec"
)

func main() {
	if len(os.Args) < 2 || os.Args[1] != "job-exec" {
		fmt.Fprintln(os.Stderr, "hqd-job-exec: hqd's job helper; hqd runs it as: hqd-job-exec job-exec [flags] -- BIN ARGS...")
		os.Exit(2)
	}
	os.Exit(jobexec.Main(os.Args[2:]))
}
