package bench

// seqWindow is what a receiver knows of one sender's sequence numbers:
// the highest received and which of the 64 below it arrived. It tells a
// first receipt in order from a late one (reordered: a higher number came
// first) and from a repeat (duplicated), the way a replay window does.
type seqWindow struct {
	top  int64  // highest sequence number received; 0: none yet (they start at 1)
	seen uint64 // bit i set: top-i was received
}

// receipt is what one received sequence number was.
type receipt uint8

const (
	inOrder   receipt = iota // higher than any before: the next, or after a gap
	reordered                // first receipt, but a higher number came first
	duplicate                // received before
)

// receive records seq and says what it was; skipped counts the numbers
// jumped over when seq opens a gap (they may still arrive, reordered).
// A number more than 64 below the highest cannot be told from a repeat:
// it counts as reordered, which fails a step all the same.
func (w *seqWindow) receive(seq int64) (r receipt, skipped int64) {
	if seq > w.top {
		shift := seq - w.top
		if shift >= 64 {
			w.seen = 0
		} else {
			w.seen <<= uint(shift)
		}
		w.seen |= 1
		skipped = shift - 1
		w.top = seq
		return inOrder, skipped
	}
	d := w.top - seq
	if d >= 64 {
		return reordered, 0
	}
	bit := uint64(1) << uint(d)
	if w.seen&bit != 0 {
		return duplicate, 0
	}
	w.seen |= bit
	return reordered, 0
}
