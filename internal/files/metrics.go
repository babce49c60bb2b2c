package files

import (
	"context"
	"errors"
	"io"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/quantapix/hqd/internal/httpx"
)

// Instrumented wraps a Store with the store metrics of SPEC §9.
type Instrumented struct {
	Store
	ops      *prometheus.CounterVec
	duration *prometheus.HistogramVec
}

// Instrument registers the store metrics on reg and wraps s.
func Instrument(s Store, backend string, reg prometheus.Registerer) *Instrumented {
	labels := prometheus.Labels{"backend": backend}
	in := &Instrumented{
		Store: s,
		ops: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "hqd_store_operations_total", Help: "Store operations by operation and outcome.", ConstLabels: labels,
		}, []string{"op", "outcome"}),
		duration: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name: "hqd_store_operation_duration_seconds", Help: "Store operation latency (until the first byte for reads).", ConstLabels: labels,
			Buckets: []float64{.0005, .001, .0025, .005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5, 10},
		}, []string{"op"}),
	}
	reg.MustRegister(in.ops, in.duration)
	return in
}

func (in *Instrumented) observe(ctx context.Context, op string, start time.Time, err error) {
	d := time.Since(start)
	in.duration.WithLabelValues(op).Observe(d.Seconds())
	httpx.AddBackendTime(ctx, d)
	outcome := "ok"
	var ue *UnavailableError
	switch {
	case err == nil:
	case errors.As(err, &ue):
		outcome = "error"
	case errors.Is(err, ErrNotFound):
		outcome = "not_found"
	case errors.Is(err, ErrPrecondition), errors.Is(err, ErrNotModified), errors.Is(err, ErrBadRange), errors.Is(err, ErrConflict), errors.Is(err, ErrBadToken), errors.Is(err, ErrExists):
		outcome = "refused"
	default:
		outcome = "error"
	}
	in.ops.WithLabelValues(op, outcome).Inc()
}

func (in *Instrumented) Get(ctx context.Context, key string, opt GetOptions) (*Object, error) {
	start := time.Now()
	o, err := in.Store.Get(ctx, key, opt)
	in.observe(ctx, "get", start, err)
	return o, err
}

func (in *Instrumented) Put(ctx context.Context, key string, body io.Reader, opt PutOptions) (Info, error) {
	start := time.Now()
	i, err := in.Store.Put(ctx, key, body, opt)
	in.observe(ctx, "put", start, err)
	return i, err
}

func (in *Instrumented) Delete(ctx context.Context, key, ifMatch string) error {
	start := time.Now()
	err := in.Store.Delete(ctx, key, ifMatch)
	in.observe(ctx, "delete", start, err)
	return err
}

func (in *Instrumented) Copy(ctx context.Context, src, dst string, opt CopyOptions) (Info, error) {
	start := time.Now()
	i, err := in.Store.Copy(ctx, src, dst, opt)
	in.observe(ctx, "copy", start, err)
	return i, err
}

func (in *Instrumented) Move(ctx context.Context, src, dst string, opt CopyOptions) (Info, error) {
	start := time.Now()
	i, err := in.Store.Move(ctx, src, dst, opt)
	in.observe(ctx, "move", start, err)
	return i, err
}

func (in *Instrumented) List(ctx context.Context, opt ListOptions) (ListPage, error) {
	start := time.Now()
	p, err := in.Store.List(ctx, opt)
	in.observe(ctx, "list", start, err)
	return p, err
}
