package shared

import (
	"context"
	"fmt"
	"log/slog"
)

// SALogger returns log with key=spi (16 hex digits) on every record, as
// log.With(key, ...) would, placed before the record's own attributes.
// With keeps a pre-formatted copy of the handler per logger (about 200
// bytes); an IKE SA has one logger and mostly logs nothing while it is
// idle, so the attribute is formatted only when a record is written.
func SALogger(log *slog.Logger, key string, spi uint64) *slog.Logger {
	return slog.New(&saHandler{next: log.Handler(), key: key, spi: spi})
}

// SALog is what SALogger allocates, the logger and its handler, as one
// value to embed in the SA itself: two allocations fewer per SA, which
// count with thousands of idle ones. Init returns the logger; the SALog
// must not move (be copied) afterwards.
type SALog struct {
	h   saHandler
	log slog.Logger
}

// Init makes l log to log with key=spi on every record, as SALogger.
func (l *SALog) Init(log *slog.Logger, key string, spi uint64) *slog.Logger {
	l.h = saHandler{next: log.Handler(), key: key, spi: spi}
	l.log = *slog.New(&l.h)
	return &l.log
}

type saHandler struct {
	next slog.Handler
	key  string
	spi  uint64
}

func (h *saHandler) Enabled(ctx context.Context, l slog.Level) bool { return h.next.Enabled(ctx, l) }

func (h *saHandler) Handle(ctx context.Context, r slog.Record) error {
	out := slog.NewRecord(r.Time, r.Level, r.Message, r.PC)
	out.AddAttrs(slog.String(h.key, fmt.Sprintf("%016x", h.spi)))
	r.Attrs(func(a slog.Attr) bool {
		out.AddAttrs(a)
		return true
	})
	return h.next.Handle(ctx, out)
}

func (h *saHandler) WithAttrs(as []slog.Attr) slog.Handler {
	return &saHandler{next: h.next.WithAttrs(as), key: h.key, spi: h.spi}
}

func (h *saHandler) WithGroup(name string) slog.Handler {
	return &saHandler{next: h.next.WithGroup(name), key: h.key, spi: h.spi}
}
