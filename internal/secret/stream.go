package secret

import (
	"errors"
	"io"
)

// maxHeld bounds what a Writer holds back while a long match is still
// open; beyond it the bytes are redacted and written as they are.
const maxHeld = 1 << 20

// Writer redacts a stream: it holds back just enough of the tail of what
// was written (the longest pattern, less one byte) that a secret split
// across Write calls is still found whole. Close (or Flush) writes what is
// held. It is not safe for concurrent use.
type Writer struct {
	r   *Redactor
	w   io.Writer
	buf []byte
	err error
}

// Writer returns a redacting writer in front of w.
func (r *Redactor) Writer(w io.Writer) *Writer { return &Writer{r: r, w: w} }

// Write takes p and writes every byte that can no longer be part of a
// secret, redacted. It reports len(p) unless the underlying writer failed.
func (w *Writer) Write(p []byte) (int, error) {
	if w.err != nil {
		return 0, w.err
	}
	w.buf = append(w.buf, p...)
	m := w.r.m.Load()
	hold := m.maxLen - 1
	// Scan only once at least as much again as is held has come in, so
	// that many small writes cost a linear, not a quadratic, amount.
	if len(w.buf) < 2*hold+1 {
		return len(p), nil
	}
	ms := m.find(w.buf)
	cut := len(w.buf) - hold
	// A match that reaches the held tail might grow with the next write:
	// hold it whole, unless that would hold too much.
	var keep []match
	for _, mt := range ms {
		if mt.end <= cut {
			keep = append(keep, mt)
			continue
		}
		if mt.start < cut {
			if len(w.buf)-mt.start <= maxHeld {
				cut = mt.start
			} else { // too long to hold: let it go, redacted whole
				cut = mt.end
				keep = append(keep, mt)
			}
		}
		break
	}
	if cut > 0 {
		out := apply(nil, w.buf[:cut], keep)
		if _, err := w.w.Write(out); err != nil {
			w.err = err
			return 0, err
		}
		w.buf = append(w.buf[:0], w.buf[cut:]...)
	}
	return len(p), nil
}

// Flush redacts and writes everything held.
func (w *Writer) Flush() error {
	if w.err != nil {
		return w.err
	}
	if len(w.buf) == 0 {
		return nil
	}
	out := w.r.RedactBytes(w.buf)
	w.buf = w.buf[:0]
	if _, err := w.w.Write(out); err != nil {
		w.err = err
		return err
	}
	return nil
}

// Close flushes. It does not close the underlying writer.
func (w *Writer) Close() error {
	err := w.Flush()
	if err == nil {
		w.err = errors.New("secret: write to a closed redacting writer")
	}
	return err
}
