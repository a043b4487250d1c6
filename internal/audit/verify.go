package audit

import (
	"cmp"
	"crypto/ed25519"
	"fmt"
	"iter"
	"slices"
)

// VerifyResult summarises a verification.
type VerifyResult struct {
	Records     int64  // records that checked out, in order from seq 1
	LastSeq     int64  // seq of the last good record, 0 if none
	LastHash    string // hash of the last good record, GenesisHash if none
	Checkpoints int    // checkpoints matched against a record
	// Signed reports whether checkpoint signatures were checked. They are
	// not when Verify is given no public key; the checkpoints' seq and hash
	// are still compared with the records.
	Signed bool
}

// VerifyError is the first place a chain fails verification.
type VerifyError struct {
	Seq     int64  // the first seq that is wrong or missing
	Problem string // what is wrong there, for a human
}

func (e *VerifyError) Error() string {
	return fmt.Sprintf("audit chain broken at seq %d: %s", e.Seq, e.Problem)
}

// Verify checks records, which must come in the order they are stored
// (ascending seq), against each other and against checkpoints:
//
//   - seqs run 1, 2, 3... with no gap, repeat or reordering;
//   - each record's prev_hash is the previous record's hash (GenesisHash for
//     seq 1), and its hash is the hash of its canonical encoding;
//   - every checkpoint is signed by pub (unless pub is nil, see
//     VerifyResult.Signed) and names the hash of the record at its seq;
//   - no checkpoint names a seq past the last record, which is how a tail cut
//     off after a checkpoint shows.
//
// A broken chain is reported as a *VerifyError naming the first bad seq; an
// error yielded by records is returned wrapped. The result counts the records
// that checked out either way.
func Verify(records iter.Seq2[*Record, error], checkpoints []Checkpoint, pub ed25519.PublicKey) (VerifyResult, error) {
	v := NewVerifier(checkpoints, pub)
	for r, err := range records {
		if err != nil {
			res, _ := v.Result()
			return res, fmt.Errorf("audit: verify: reading records: %w", err)
		}
		if v.Add(r) != nil {
			break
		}
	}
	return v.Result()
}

// Records adapts a slice to the sequence Verify reads.
func Records(rs []*Record) iter.Seq2[*Record, error] {
	return func(yield func(*Record, error) bool) {
		for _, r := range rs {
			if !yield(r, nil) {
				return
			}
		}
	}
}

// Verifier is Verify one record at a time, for callers that stream records
// through a callback. Use NewVerifier, then Add every record in order, then
// Result. It is not safe for concurrent use.
type Verifier struct {
	pub         ed25519.PublicKey
	checkpoints map[int64][]Checkpoint
	sorted      []Checkpoint // by seq, for the truncation check
	res         VerifyResult
	err         error // first failure; sticky
}

// NewVerifier returns a Verifier that checks records against checkpoints,
// whose signatures it verifies with pub (if pub is not nil).
func NewVerifier(checkpoints []Checkpoint, pub ed25519.PublicKey) *Verifier {
	v := &Verifier{
		pub:         pub,
		checkpoints: make(map[int64][]Checkpoint, len(checkpoints)),
		sorted:      slices.Clone(checkpoints),
		res:         VerifyResult{LastHash: GenesisHash, Signed: pub != nil},
	}
	slices.SortStableFunc(v.sorted, func(a, b Checkpoint) int { return cmp.Compare(a.Seq, b.Seq) })
	for _, cp := range v.sorted {
		if cp.Seq < 1 {
			v.err = &VerifyError{Seq: cp.Seq, Problem: "checkpoint names a seq below 1"}
			break
		}
		v.checkpoints[cp.Seq] = append(v.checkpoints[cp.Seq], cp)
	}
	return v
}

// Add checks the next record. It returns the *VerifyError that Result will
// return if this record, or an earlier one, breaks the chain.
func (v *Verifier) Add(r *Record) error {
	if v.err != nil {
		return v.err
	}
	want := v.res.LastSeq + 1
	switch {
	case r.Seq > want:
		return v.fail(want, fmt.Sprintf("record missing (the next record stored has seq %d)", r.Seq))
	case r.Seq < want:
		return v.fail(want, fmt.Sprintf("found seq %d where seq %d belongs: records duplicated or out of order", r.Seq, want))
	}
	if r.PrevHash != v.res.LastHash {
		return v.fail(r.Seq, fmt.Sprintf("prev_hash %.16s... does not match the hash of seq %d (%.16s...)", r.PrevHash, want-1, v.res.LastHash))
	}
	h, err := r.ComputeHash()
	if err != nil {
		return v.fail(r.Seq, fmt.Sprintf("record cannot be encoded: %v", err))
	}
	if h != r.Hash {
		return v.fail(r.Seq, "hash does not match the record's contents: the record was altered")
	}
	for _, cp := range v.checkpoints[r.Seq] {
		if err := v.checkSignature(cp); err != nil {
			return err
		}
		if cp.Hash != r.Hash {
			return v.fail(r.Seq, "record differs from the one the checkpoint signed: the chain was rewritten")
		}
		v.res.Checkpoints++
	}
	v.res.Records++
	v.res.LastSeq = r.Seq
	v.res.LastHash = r.Hash
	return nil
}

// Result finishes the verification after the last record has been added.
func (v *Verifier) Result() (VerifyResult, error) {
	if v.err != nil {
		return v.res, v.err
	}
	for _, cp := range v.sorted {
		if cp.Seq <= v.res.LastSeq {
			continue
		}
		// Only a genuine checkpoint proves records were lost; a forged one
		// is reported as such.
		if err := v.checkSignature(cp); err != nil {
			return v.res, err
		}
		return v.res, v.fail(v.res.LastSeq+1, fmt.Sprintf(
			"records missing: a checkpoint was signed at seq %d but the last record is seq %d (the tail was truncated)", cp.Seq, v.res.LastSeq))
	}
	return v.res, nil
}

func (v *Verifier) checkSignature(cp Checkpoint) error {
	if v.pub == nil {
		return nil
	}
	if p := checkpointProblem(v.pub, cp); p != "" {
		return v.fail(cp.Seq, "checkpoint "+p)
	}
	return nil
}

func (v *Verifier) fail(seq int64, problem string) error {
	v.err = &VerifyError{Seq: seq, Problem: problem}
	return v.err
}
