package audit

import (
	"errors"
	"fmt"
	"iter"
	"slices"
	"strings"
	"testing"
	"time"
)

// chain builds n sealed records with a checkpoint every `every` records.
func chain(t testing.TB, n int, s *Signer, every int) ([]*Record, []Checkpoint) {
	t.Helper()
	var recs []*Record
	var cps []Checkpoint
	prev := GenesisHash
	start := time.Date(2026, 11, 3, 0, 0, 0, 0, time.UTC)
	for i := 1; i <= n; i++ {
		r := &Record{
			ID:       fmt.Sprintf("rec-%d", i),
			Time:     start.Add(time.Duration(i) * time.Second),
			Agent:    "agent",
			Kind:     KindDecision,
			CallID:   fmt.Sprintf("call-%d", i),
			Decision: "ALLOW",
			Args:     []byte(fmt.Sprintf(`{"i":%d}`, i)),
		}
		if err := r.Seal(prev, int64(i)); err != nil {
			t.Fatal(err)
		}
		prev = r.Hash
		recs = append(recs, r)
		if s != nil && every > 0 && i%every == 0 {
			cps = append(cps, s.Sign(r.Seq, r.Hash, r.Time))
		}
	}
	return recs, cps
}

func clone(recs []*Record) []*Record {
	out := make([]*Record, len(recs))
	for i, r := range recs {
		c := *r
		out[i] = &c
	}
	return out
}

func TestVerify(t *testing.T) {
	s := newTestSigner(t)
	other := newTestSigner(t)
	// 10 records, checkpoints at 4 and 8.
	recs, cps := chain(t, 10, s, 4)

	tests := []struct {
		name    string
		mutate  func(rs []*Record, cps []Checkpoint) ([]*Record, []Checkpoint)
		wantSeq int64  // 0: the chain verifies
		want    string // part of the problem
	}{
		{"intact", nil, 0, ""},
		{"altered field", func(rs []*Record, c []Checkpoint) ([]*Record, []Checkpoint) {
			rs[4].Agent = "someone-else"
			return rs, c
		}, 5, "altered"},
		{"altered args", func(rs []*Record, c []Checkpoint) ([]*Record, []Checkpoint) {
			rs[6].Args = []byte(`{"i":700}`)
			return rs, c
		}, 7, "altered"},
		{"altered hash", func(rs []*Record, c []Checkpoint) ([]*Record, []Checkpoint) {
			rs[2].Hash = GenesisHash
			return rs, c
		}, 3, "altered"},
		{"altered and re-hashed", func(rs []*Record, c []Checkpoint) ([]*Record, []Checkpoint) {
			rs[4].Decision = "DENY"
			rs[4].Hash, _ = rs[4].ComputeHash()
			return rs, c
		}, 6, "prev_hash"},
		{"tail rewritten and re-chained up to a checkpoint", func(rs []*Record, c []Checkpoint) ([]*Record, []Checkpoint) {
			prev := rs[4].PrevHash
			for _, r := range rs[4:] {
				r.Reason = "nothing to see"
				if err := r.Seal(prev, r.Seq); err != nil {
					t.Fatal(err)
				}
				prev = r.Hash
			}
			return rs, c
		}, 8, "checkpoint signed"},
		{"deleted row", func(rs []*Record, c []Checkpoint) ([]*Record, []Checkpoint) {
			return slices.Delete(rs, 4, 5), c
		}, 5, "missing"},
		{"deleted first row", func(rs []*Record, c []Checkpoint) ([]*Record, []Checkpoint) {
			return rs[1:], c
		}, 1, "missing"},
		{"swapped rows", func(rs []*Record, c []Checkpoint) ([]*Record, []Checkpoint) {
			rs[3], rs[4] = rs[4], rs[3]
			return rs, c
		}, 4, "missing"},
		{"swapped contents keeping seq", func(rs []*Record, c []Checkpoint) ([]*Record, []Checkpoint) {
			rs[5].Seq, rs[6].Seq = rs[6].Seq, rs[5].Seq
			rs[5], rs[6] = rs[6], rs[5]
			return rs, c
		}, 6, ""},
		{"duplicated row", func(rs []*Record, c []Checkpoint) ([]*Record, []Checkpoint) {
			return slices.Insert(rs, 3, rs[2]), c
		}, 4, "out of order"},
		{"truncated tail after checkpoint", func(rs []*Record, c []Checkpoint) ([]*Record, []Checkpoint) {
			return rs[:6], c
		}, 7, "truncated"},
		{"truncated tail after last checkpoint is not provable", func(rs []*Record, c []Checkpoint) ([]*Record, []Checkpoint) {
			return rs[:9], c
		}, 0, ""},
		{"everything truncated", func(rs []*Record, c []Checkpoint) ([]*Record, []Checkpoint) {
			return nil, c
		}, 1, "truncated"},
		{"forged checkpoint signature", func(rs []*Record, c []Checkpoint) ([]*Record, []Checkpoint) {
			c[0].Signature[0] ^= 0x80
			return rs, c
		}, 4, "signature"},
		{"checkpoint moved", func(rs []*Record, c []Checkpoint) ([]*Record, []Checkpoint) {
			c[1].Seq = 9
			return rs, c
		}, 9, "signature"},
		{"checkpoint from another key", func(rs []*Record, c []Checkpoint) ([]*Record, []Checkpoint) {
			c[1] = other.Sign(rs[7].Seq, rs[7].Hash, rs[7].Time)
			return rs, c
		}, 8, "signed by key"},
		{"forged checkpoint past the end", func(rs []*Record, c []Checkpoint) ([]*Record, []Checkpoint) {
			return rs, append(c, other.Sign(50, GenesisHash, time.Now()))
		}, 50, "signed by key"},
		{"checkpoint at seq 0", func(rs []*Record, c []Checkpoint) ([]*Record, []Checkpoint) {
			return rs, append(c, s.Sign(0, GenesisHash, time.Now()))
		}, 0, "below 1"},
		{"first record not from genesis", func(rs []*Record, c []Checkpoint) ([]*Record, []Checkpoint) {
			rs[0].PrevHash = strings.Repeat("1", 64)
			return rs, c
		}, 1, "prev_hash"},
		{"checkpoints out of order are fine", func(rs []*Record, c []Checkpoint) ([]*Record, []Checkpoint) {
			c[0], c[1] = c[1], c[0]
			return rs, c
		}, 0, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			rs, c := clone(recs), slices.Clone(cps)
			for i := range c {
				c[i].Signature = slices.Clone(c[i].Signature)
			}
			if tt.mutate != nil {
				rs, c = tt.mutate(rs, c)
			}
			res, err := Verify(Records(rs), c, s.Public())
			if tt.wantSeq == 0 && tt.want == "" {
				if err != nil {
					t.Fatalf("Verify: %v", err)
				}
				if res.Records != int64(len(rs)) || !res.Signed {
					t.Errorf("result %+v, want %d records, signed", res, len(rs))
				}
				return
			}
			var ve *VerifyError
			if !errors.As(err, &ve) {
				t.Fatalf("err = %v, want a *VerifyError", err)
			}
			if ve.Seq != tt.wantSeq || !strings.Contains(ve.Problem, tt.want) {
				t.Errorf("VerifyError{Seq: %d, Problem: %q}, want seq %d and a problem mentioning %q", ve.Seq, ve.Problem, tt.wantSeq, tt.want)
			}
			if tt.wantSeq > 0 && res.Records > tt.wantSeq-1 {
				t.Errorf("result counts %d good records, but seq %d is bad", res.Records, tt.wantSeq)
			}
		})
	}
}

func TestVerifyWithoutKey(t *testing.T) {
	s := newTestSigner(t)
	recs, cps := chain(t, 9, s, 3)
	res, err := Verify(Records(recs), cps, nil)
	if err != nil {
		t.Fatal(err)
	}
	if res.Signed || res.Checkpoints != 3 || res.Records != 9 || res.LastSeq != 9 || res.LastHash != recs[8].Hash {
		t.Errorf("result = %+v", res)
	}
	// Without a key, a checkpoint still catches a truncated tail.
	_, err = Verify(Records(recs[:4]), cps, nil)
	var ve *VerifyError
	if !errors.As(err, &ve) || ve.Seq != 5 {
		t.Errorf("truncated, no key: err = %v, want a *VerifyError at seq 5", err)
	}
}

func TestVerifyEmpty(t *testing.T) {
	res, err := Verify(Records(nil), nil, nil)
	if err != nil || res.Records != 0 || res.LastHash != GenesisHash {
		t.Errorf("Verify(nothing) = %+v, %v", res, err)
	}
}

func TestVerifyReadError(t *testing.T) {
	recs, _ := chain(t, 3, nil, 0)
	boom := errors.New("disk on fire")
	seq := func(yield func(*Record, error) bool) {
		for _, r := range recs[:2] {
			if !yield(r, nil) {
				return
			}
		}
		yield(nil, boom)
	}
	res, err := Verify(iter.Seq2[*Record, error](seq), nil, nil)
	if !errors.Is(err, boom) {
		t.Errorf("err = %v, want it to wrap %v", err, boom)
	}
	var ve *VerifyError
	if errors.As(err, &ve) {
		t.Errorf("a read error was reported as tampering: %v", err)
	}
	if res.Records != 2 {
		t.Errorf("records = %d, want 2", res.Records)
	}
}

func BenchmarkVerify(b *testing.B) {
	s := newTestSigner(b)
	recs, cps := chain(b, 1000, s, 100)
	b.ReportAllocs()
	for b.Loop() {
		if _, err := Verify(Records(recs), cps, s.Public()); err != nil {
			b.Fatal(err)
		}
	}
}
