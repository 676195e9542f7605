package store

import "fmt"

// The quarantine's bound. A hostile upstream can put a hundred thousand
// bad records into one block; storing each of them in full cost more
// memory and disk than the block itself (about 45 MB of rejected records
// held in one transaction for a 56 MB block). So of one height's rejected
// records only a sample is kept in full, and the rest are counted: nothing
// disappears (every count is exact), and what a reader needs to diagnose
// the upstream, the first records of each reason with their raw bytes, is
// still there.
const (
	// MaxRejectedSample is how many rejected records of one height, kind,
	// field and reason a batch keeps in full. The rest are counted in one
	// counting record (Rejected.Counted) that follows them. A hundred
	// examples of one fault tell as much as a hundred thousand do.
	MaxRejectedSample = 100
	// MaxRejectedReasons is how many distinct reasons of one height (and
	// kind) a batch keeps samples of. Reasons quote the bad value, so an
	// upstream that varies it would otherwise make every record a reason
	// of its own; the records of further reasons are counted together in
	// one counting record per kind (RejectedFurtherReasons).
	MaxRejectedReasons = 20
)

// RejectedFurtherReasons starts the reason of a counting record that
// counts the records of the reasons past MaxRejectedReasons at its height.
const RejectedFurtherReasons = "further reasons"

// Records is how many rejected records r stands for: one kept in full,
// or a counting record's count.
func (r *Rejected) Records() uint64 {
	if r.Counted > 0 {
		return r.Counted
	}
	return 1
}

// rejectedGroup is what a batch samples rejected records by. A group of
// further reasons (further set) has kind and height only.
type rejectedGroup struct {
	height              uint64
	kind, field, reason string
	further             bool
}

// rejectedTally is a batch's index of its rejected records by group.
type rejectedTally struct {
	groups  map[rejectedGroup]*groupTally
	reasons map[heightKind]int // groups with samples
	// n is len(Rejected) after the last Reject: a batch whose records
	// changed behind Reject's back is tallied again.
	n int
}

type heightKind struct {
	height uint64
	kind   string
}

// groupTally is one group's records in the batch: how many are kept in
// full, and where its counting record is (-1: none yet).
type groupTally struct {
	kept     int
	counting int
}

// Reject adds a quarantined record to b.Rejected under the quarantine's
// bound: the first MaxRejectedSample records of each height, kind, field
// and reason in full (of the first MaxRejectedReasons reasons of a height
// and kind), every other one counted in the counting record of its group,
// which names the first and last record it counts. A counting record
// given to Reject (a copy, a re-tally) joins its group's.
//
// Sources that quarantine many records build them through Reject, so a
// flood never holds more than the bound in memory; Quarantine bounds the
// records a source appended to b.Rejected itself.
func (b *Batch) Reject(r Rejected) {
	if b.tally != nil && b.tally.n != len(b.Rejected) {
		b.boundRejected()
	}
	if b.tally == nil {
		b.tally = &rejectedTally{groups: map[rejectedGroup]*groupTally{}, reasons: map[heightKind]int{}}
	}
	t := b.tally
	defer func() { t.n = len(b.Rejected) }()
	g := rejectedGroup{height: r.Height, kind: r.Kind, field: r.Field, reason: r.Reason}
	gt := t.groups[g]
	if gt == nil {
		at := heightKind{r.Height, r.Kind}
		if t.reasons[at] >= MaxRejectedReasons {
			if r.Counted == 0 {
				r.Field, r.Reason = "", boundedText(fmt.Sprintf("%s than the %d kept at this height (the first: %s)", RejectedFurtherReasons, MaxRejectedReasons, r.Reason))
			}
			g = rejectedGroup{height: r.Height, kind: r.Kind, further: true}
			if gt = t.groups[g]; gt == nil {
				gt = &groupTally{kept: MaxRejectedSample, counting: -1}
				t.groups[g] = gt
			}
		} else {
			t.reasons[at]++
			gt = &groupTally{counting: -1}
			t.groups[g] = gt
		}
	}
	switch {
	case r.Counted == 0 && gt.kept < MaxRejectedSample:
		gt.kept++
		b.Rejected = append(b.Rejected, r)
	case gt.counting < 0:
		gt.counting = len(b.Rejected)
		b.Rejected = append(b.Rejected, countingRecord(r))
	default:
		c := &b.Rejected[gt.counting]
		c.Counted += r.Records()
		c.LastKey = r.LastRecord()
	}
}

// countingRecord is the counting record that r starts: its key is r's,
// its raw bytes are dropped (the records kept in full show them).
func countingRecord(r Rejected) Rejected {
	r.Counted, r.LastKey = r.Records(), r.LastRecord()
	r.Raw, r.RawSize = nil, 0
	return r
}

// LastRecord is the key of the last record r stands for: LastKey for a
// counting record, else Key.
func (r *Rejected) LastRecord() string {
	if r.Counted > 0 && r.LastKey != "" {
		return r.LastKey
	}
	return r.Key
}

// boundRejected applies the quarantine's bound to b.Rejected as it is,
// keeping the records' order: records a source appended directly are
// sampled and counted like those it added through Reject.
func (b *Batch) boundRejected() {
	all := b.Rejected
	b.Rejected, b.tally = all[:0], nil
	// Reject appends at most one record for each it reads, so the
	// writes never overtake the reads.
	for i := range all {
		b.Reject(all[i])
	}
	clear(all[len(b.Rejected):])
}
