package alert

import (
	"sync"
	"time"
)

// slot is the resolution of the sliding windows; windows are whole slots.
const slot = 10 * time.Second

// nslots covers the longest window plus the slot being filled.
const nslots = int(MaxWindow/slot) + 1

// Key names what a count is about: config names, as the dispatcher's
// metric labels are (so the key space is bounded by the config).
type Key struct{ Agent, Connector string }

type counts struct {
	decided, denied  float64
	executed, failed float64
	costUSD          float64
}

type bucket struct {
	slot int64 // Unix time / slot; which ten seconds this bucket holds
	by   map[Key]*counts
}

// window keeps per-key counts in a ring of ten-second buckets covering
// the last hour.
type window struct {
	mu   sync.Mutex
	ring [nslots]bucket
}

func slotOf(t time.Time) int64 { return t.Unix() / int64(slot/time.Second) }

// add applies f to the counts of k in the bucket of now.
func (w *window) add(now time.Time, k Key, f func(*counts)) {
	s := slotOf(now)
	w.mu.Lock()
	defer w.mu.Unlock()
	b := &w.ring[int(s%int64(nslots))]
	if b.slot != s || b.by == nil {
		b.slot, b.by = s, map[Key]*counts{}
	}
	c := b.by[k]
	if c == nil {
		c = &counts{}
		b.by[k] = c
	}
	f(c)
}

// sum adds up the counts of the keys match accepts over the last d
// (whole slots, the current one included).
func (w *window) sum(now time.Time, d time.Duration, match func(Key) bool) counts {
	cur := slotOf(now)
	oldest := cur - int64(d/slot) + 1
	var total counts
	w.mu.Lock()
	defer w.mu.Unlock()
	for i := range w.ring {
		b := &w.ring[i]
		if b.by == nil || b.slot < oldest || b.slot > cur {
			continue
		}
		for k, c := range b.by {
			if !match(k) {
				continue
			}
			total.decided += c.decided
			total.denied += c.denied
			total.executed += c.executed
			total.failed += c.failed
			total.costUSD += c.costUSD
		}
	}
	return total
}
