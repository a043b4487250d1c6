package secret

import (
	"context"
	"fmt"
	"log/slog"
)

// LogHandler returns a slog handler that redacts every record's message
// and attributes (strings, errors, and anything else whose printed form
// holds a secret) before passing it to next.
func (r *Redactor) LogHandler(next slog.Handler) slog.Handler {
	return &logHandler{next: next, r: r}
}

type logHandler struct {
	next slog.Handler
	r    *Redactor
}

func (h *logHandler) Enabled(ctx context.Context, l slog.Level) bool { return h.next.Enabled(ctx, l) }

func (h *logHandler) Handle(ctx context.Context, rec slog.Record) error {
	out := slog.NewRecord(rec.Time, rec.Level, h.r.Redact(rec.Message), rec.PC)
	rec.Attrs(func(a slog.Attr) bool {
		out.AddAttrs(h.attr(a))
		return true
	})
	return h.next.Handle(ctx, out)
}

func (h *logHandler) WithAttrs(as []slog.Attr) slog.Handler {
	red := make([]slog.Attr, len(as))
	for i, a := range as {
		red[i] = h.attr(a)
	}
	return &logHandler{next: h.next.WithAttrs(red), r: h.r}
}

func (h *logHandler) WithGroup(name string) slog.Handler {
	return &logHandler{next: h.next.WithGroup(name), r: h.r}
}

func (h *logHandler) attr(a slog.Attr) slog.Attr {
	v := a.Value.Resolve()
	switch v.Kind() {
	case slog.KindString:
		a.Value = slog.StringValue(h.r.Redact(v.String()))
	case slog.KindGroup:
		as := v.Group()
		red := make([]slog.Attr, len(as))
		for i, g := range as {
			red[i] = h.attr(g)
		}
		a.Value = slog.GroupValue(red...)
	case slog.KindAny:
		x := v.Any()
		var s string
		if err, ok := x.(error); ok {
			s = err.Error()
		} else {
			s = fmt.Sprintf("%+v", x)
		}
		if red := h.r.Redact(s); red != s {
			a.Value = slog.StringValue(red)
		} else if _, ok := x.(error); ok {
			a.Value = slog.StringValue(s)
		} else {
			a.Value = v
		}
	default:
		a.Value = v
	}
	return a
}
