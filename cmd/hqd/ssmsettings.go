package main

import (
	"context"
	"flag"
	"fmt"
	"io"
	"os"
	"strings"
	"time"

	"github.com/aws/aws-sdk-go-v2/config"
	"github.com/aws/aws-sdk-go-v2/service/ssm"

	"github.com/quantapix/hqd/internal/ssmenv"
)

// hasSettings tells a settings file with at least one setting from an
// empty one.
func hasSettings(b []byte) bool {
	for line := range strings.Lines(string(b)) {
		if k, _, ok := strings.Cut(line, "="); ok && strings.HasPrefix(strings.TrimSpace(k), "HQD_") {
			return true
		}
	}
	return false
}

// ssmSettings is `hqd ssm-settings`: the host's settings file from SSM,
// run by systemd before every start of hqd (deploy/systemd/hqd-ssm.conf).
// When SSM cannot be read, an existing file is kept and hqd starts with
// it (the error is in the journal); without one, hqd does not start.
func ssmSettings(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("ssm-settings", flag.ContinueOnError)
	fs.SetOutput(stderr)
	dir := fs.String("path", "/hqd/", "the SSM path whose parameters are the settings (HQD_* names)")
	out := fs.String("out", "/etc/hqd/hqd.env", "the settings file to write (systemd's EnvironmentFile=)")
	region := fs.String("region", "", "AWS region; AWS_REGION, the shared config or the instance's metadata when empty")
	if err := fs.Parse(args); err != nil {
		return err
	}
	ctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	opts := []func(*config.LoadOptions) error{config.WithEC2IMDSRegion()}
	if *region != "" {
		opts = append(opts, config.WithRegion(*region))
	}
	values, err := func() (map[string]string, error) {
		awsCfg, err := config.LoadDefaultConfig(ctx, opts...)
		if err != nil {
			return nil, fmt.Errorf("loading AWS configuration: %w", err)
		}
		return ssmenv.Fetch(ctx, ssm.NewFromConfig(awsCfg), *dir)
	}()
	if err != nil {
		if kept, _ := os.ReadFile(*out); hasSettings(kept) {
			fmt.Fprintf(stderr, "hqd ssm-settings: %v; keeping %s as it is\n", err, *out)
			return nil
		}
		return err // no settings at all (install.sh leaves an empty file): hqd must not start
	}
	if err := ssmenv.Write(*out, ssmenv.Render(values, *dir, time.Now())); err != nil {
		return fmt.Errorf("writing %s: %w", *out, err)
	}
	fmt.Fprintf(stdout, "hqd ssm-settings: %d settings from %s written to %s\n", len(values), *dir, *out)
	return nil
}
