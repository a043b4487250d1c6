package sandbox

import "sync"

// captureSlack is how much is kept beyond the limit so that redaction sees
// a secret whole even where the cut would fall inside it.
const captureSlack = 8 << 10

// capture keeps the first limit bytes written to it (plus captureSlack)
// and counts the rest. The command never blocks on it: beyond the limit,
// output is read and dropped.
type capture struct {
	mu    sync.Mutex
	limit int64
	buf   []byte
	total int64
}

func newCapture(limit int64) *capture { return &capture{limit: limit} }

func (c *capture) Write(p []byte) (int, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.total += int64(len(p))
	if room := c.limit + captureSlack - int64(len(c.buf)); room > 0 {
		if int64(len(p)) > room {
			c.buf = append(c.buf, p[:room]...)
		} else {
			c.buf = append(c.buf, p...)
		}
	}
	return len(p), nil
}

func (c *capture) truncated() bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.total > c.limit
}

// bytes returns what was kept, redacted, cut to the limit, with
// TruncationMarker when anything was cut.
func (c *capture) bytes(redact func([]byte) []byte) []byte {
	c.mu.Lock()
	b := append([]byte(nil), c.buf...)
	total := c.total
	c.mu.Unlock()
	if redact != nil {
		b = redact(b)
	}
	if int64(len(b)) > c.limit || total > c.limit {
		if int64(len(b)) > c.limit {
			b = b[:c.limit]
		}
		b = append(b, TruncationMarker...)
	}
	return b
}
