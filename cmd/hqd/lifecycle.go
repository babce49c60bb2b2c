package main

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"os"
	"os/signal"
	"syscall"
	"time"

	"github.com/coreos/go-systemd/v22/daemon"
	"golang.org/x/sync/errgroup"

	"github.com/quantapix/hqd/internal/version"
)

// finishMoves settles the s3 store's moves that a crash or an unreachable
// S3 left half done: at start, then every minute until ctx ends.
func (a *App) finishMoves(ctx context.Context) {
	for {
		outcomes, err := a.s3.FinishMoves(ctx)
		if err != nil {
			a.log.Error("finishing moves", "err", err)
		}
		for _, o := range outcomes {
			if o.Err != nil {
				a.log.Warn("a move is still half done; retrying in a minute", "from", o.Src, "to", o.Dst, "err", o.Err)
			} else {
				a.log.Info("a half-done move was settled", "from", o.Src, "to", o.Dst, "outcome", o.Done)
			}
		}
		select {
		case <-ctx.Done():
			return
		case <-time.After(time.Minute):
		}
	}
}

func metricsAddr(ln net.Listener) string {
	if ln == nil {
		return "off"
	}
	return ln.Addr().String()
}

// Run serves until ctx ends, then shuts down within HQD_SHUTDOWN_GRACE.
func (a *App) Run(ctx context.Context) error {
	// Streams and long requests run under baseCtx, cancelled before
	// Shutdown so that they do not hold it up.
	baseCtx, cancelBase := context.WithCancel(context.WithoutCancel(ctx))
	defer cancelBase()
	srv := &http.Server{
		Handler:           a.handler,
		ReadHeaderTimeout: 10 * time.Second,
		IdleTimeout:       120 * time.Second,
		MaxHeaderBytes:    64 << 10,
		BaseContext:       func(net.Listener) context.Context { return baseCtx },
		ErrorLog:          slog.NewLogLogger(a.log.Handler(), slog.LevelWarn),
		TLSConfig:         a.tlsConfig,
	}
	var metricsSrv *http.Server
	if a.metricsLn != nil {
		metricsSrv = &http.Server{
			Handler:           a.metricsHandler(),
			ReadHeaderTimeout: 10 * time.Second,
		}
	}
	g, gctx := errgroup.WithContext(ctx)
	g.Go(func() error {
		var err error
		if a.tlsConfig != nil {
			err = srv.ServeTLS(a.ln, "", "")
		} else {
			err = srv.Serve(a.ln)
		}
		if errors.Is(err, http.ErrServerClosed) {
			return nil
		}
		return fmt.Errorf("serving %s: %w", a.ln.Addr(), err)
	})
	if metricsSrv != nil {
		g.Go(func() error {
			if err := metricsSrv.Serve(a.metricsLn); !errors.Is(err, http.ErrServerClosed) {
				return fmt.Errorf("serving metrics: %w", err)
			}
			return nil
		})
	}
	var redirectSrv *http.Server
	if a.httpLn != nil {
		redirectSrv = &http.Server{Handler: a.certs.HTTPHandler(), ReadHeaderTimeout: 10 * time.Second, IdleTimeout: 30 * time.Second,
			ErrorLog: slog.NewLogLogger(a.log.Handler(), slog.LevelWarn)}
		g.Go(func() error {
			if err := redirectSrv.Serve(a.httpLn); !errors.Is(err, http.ErrServerClosed) {
				return fmt.Errorf("serving %s: %w", a.httpLn.Addr(), err)
			}
			return nil
		})
	}
	if err := a.verifier.Start(baseCtx); err != nil {
		return err
	}
	if a.s3 != nil {
		go a.finishMoves(baseCtx)
	}
	if a.certs != nil {
		// After the listeners serve: TLS-ALPN-01 is answered by the HTTPS one.
		if err := a.certs.Start(baseCtx); err != nil {
			return err
		}
	}
	// SIGHUP (systemctl reload) reloads the certificates, and never ends
	// hqd: without TLS there is nothing to reload, and Go's default for
	// SIGHUP would exit.
	hup := make(chan os.Signal, 1)
	signal.Notify(hup, syscall.SIGHUP)
	defer signal.Stop(hup)
	g.Go(func() error {
		for {
			select {
			case <-hup:
				if a.certs != nil {
					_ = a.certs.Reload() // logged; the old certificate stays
				} else {
					a.log.Info("SIGHUP: nothing to reload (no TLS certificates)")
				}
			case <-gctx.Done():
				return nil
			}
		}
	})
	a.log.Info("listening", "url", a.publicURL, "addr", a.ln.Addr().String(), "http", addrOf(a.httpLn), "tls", a.tlsConfig != nil,
		"metrics", metricsAddr(a.metricsLn), "storage", a.cfg.Storage, "version", version.Version)
	_, _ = daemon.SdNotify(false, daemon.SdNotifyReady) // no-op outside systemd

	g.Go(func() error {
		a.jobs.Run(gctx)
		return nil
	})
	g.Go(func() error {
		<-gctx.Done()
		_, _ = daemon.SdNotify(false, daemon.SdNotifyStopping)
		close(a.shutdown) // open streams get a shutdown event before they close
		a.log.Info("shutting down", "grace", a.cfg.ShutdownGrace.String())
		sctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), a.cfg.ShutdownGrace)
		defer cancel()
		cancelBase()
		a.jobs.Close() // kills running jobs; their streams end with done
		err := srv.Shutdown(sctx)
		if err == nil {
			err = a.jobRoutes.Wait(sctx) // streams that left net/http said goodbye too
		}
		if metricsSrv != nil {
			_ = metricsSrv.Shutdown(sctx) // scrapes are short; the main server's error is the one that matters
		}
		if redirectSrv != nil {
			_ = redirectSrv.Shutdown(sctx) // redirects are short, as above
		}
		a.verifier.Close()
		if a.certs != nil {
			a.certs.Stop()
		}
		if err != nil {
			srv.Close()
			return fmt.Errorf("shutdown: in-flight requests outlived HQD_SHUTDOWN_GRACE: %w", err)
		}
		return nil
	})
	err := g.Wait()
	a.log.Info("stopped")
	return err
}
