package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"path/filepath"

	"go.uber.org/zap"
	"go.uber.org/zap/zapcore"

	"github.com/quantapix/hqd/internal/version"
)

const usage = `Usage: hqd <command> [--setting=value ...]

Commands:
  serve     run in production (settings: hqd serve --help)
  dev       run locally with no dependencies (settings: hqd dev --help)
  version   print the version
  ssm-settings [--path=/hqd/] [--out=/etc/hqd/hqd.env]
            write the settings file from the SSM parameters under a path
            (the EC2 host runs it before every start: hqd-ssm.conf)
`

// run is main with the outside world passed in, so tests can call it.
func run(ctx context.Context, args []string, getenv func(string) string, environ []string, stdout, stderr io.Writer) error {
	if len(args) == 0 {
		fmt.Fprint(stderr, usage)
		return errors.New("no command given")
	}
	switch args[0] {
	case "version", "--version", "-version":
		fmt.Fprintln(stdout, "hqd", version.Version)
		return nil
	case "help", "--help", "-h", "-help":
		fmt.Fprint(stdout, usage)
		return nil
	case "ssm-settings":
		return ssmSettings(ctx, args[1:], stdout, stderr)
	case "serve", "dev":
	default:
		fmt.Fprint(stderr, usage)
		return fmt.Errorf("unknown command %q", args[0])
	}
	cfg, err := parseConfig(args[0], args[1:], getenv, environ, stdout, stderr)
	if err != nil {
		return err
	}
	log := newLogger(stdout, cfg.LogLevel)
	app, err := newApp(ctx, cfg, log, stdout)
	if err != nil {
		return err
	}
	if cfg.Mode == "dev" {
		printDevBanner(stderr, app)
	}
	return app.Run(ctx)
}

// newZapLogger is certmagic's logger: JSON lines on the same stream, at
// the same level, marked as certmagic's.
func newZapLogger(w io.Writer, level string) *zap.Logger {
	var l zapcore.Level
	_ = l.UnmarshalText([]byte(level)) // validated with the configuration
	enc := zap.NewProductionEncoderConfig()
	enc.TimeKey, enc.MessageKey, enc.EncodeTime = "time", "msg", zapcore.RFC3339NanoTimeEncoder
	enc.EncodeLevel = zapcore.CapitalLevelEncoder
	return zap.New(zapcore.NewCore(zapcore.NewJSONEncoder(enc), zapcore.AddSync(w), l)).With(zap.String("pkg", "certmagic"))
}

func newLogger(w io.Writer, level string) *slog.Logger {
	var l slog.Level
	_ = l.UnmarshalText([]byte(level)) // validated with the configuration
	return slog.New(slog.NewJSONHandler(w, &slog.HandlerOptions{Level: l}))
}

func printDevBanner(w io.Writer, a *App) {
	u := a.publicURL
	fmt.Fprintf(w, `
hqd dev is serving %[1]s
  files:    %[2]s
  accounts: %[3]s (dev identity provider; pool %[4]s, client %[5]s)

Sign up, sign in and keep a file:
  curl -s %[1]s/dev/cognito/ -H 'X-Amz-Target: AWSCognitoIdentityProviderService.SignUp' -H 'Content-Type: application/x-amz-json-1.1' \
    -d '{"ClientId":"%[5]s","Username":"me@example.com","Password":"Passw0rd!"}'
  TOKEN=$(curl -s %[1]s/dev/cognito/ -H 'X-Amz-Target: AWSCognitoIdentityProviderService.InitiateAuth' -H 'Content-Type: application/x-amz-json-1.1' \
    -d '{"ClientId":"%[5]s","AuthFlow":"USER_PASSWORD_AUTH","AuthParameters":{"USERNAME":"me@example.com","PASSWORD":"Passw0rd!"}}' | sed 's/.*"AccessToken":"\([^"]*\)".*/\1/')
  curl -s -X PUT '%[1]s/api/files/notes/hello.md?raw=1' -H "Authorization: Bearer $TOKEN" --data-binary 'hello'
  curl -s '%[1]s/api/files?delimiter=/' -H "Authorization: Bearer $TOKEN"

`, u, a.cfg.StorageDir, filepath.Join(a.cfg.DataDir, "dev-idp"), a.cfg.PoolID, a.cfg.ClientIDs[0])
}
