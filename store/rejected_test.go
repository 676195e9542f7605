package store

import (
	"fmt"
	"strings"
	"testing"
	"time"
)

// TestRejectBoundsAFlood: however many records one height rejects, and
// however their reasons vary, the batch keeps a bounded number of them,
// and the records they stand for add up to every one rejected.
func TestRejectBoundsAFlood(t *testing.T) {
	b := Batch{Source: "flow"}
	const n = 30000
	for i := range n {
		// An upstream that varies the bad value makes every reason its own.
		reason := fmt.Sprintf("amount: %q is not a UFix64%s", fmt.Sprint(i), strings.Repeat("!", MaxTextLen))
		b.Reject(NewRejected(RecordReward, 7, fmt.Sprintf("reward tx 0 event %d", i), "", reason, nil))
	}
	b.Reject(NewRejected(RecordBlock, 7, "block time", "block_time", "outside 1970..2261", []byte("{}")))
	if max := MaxRejectedReasons*MaxRejectedSample + 2; len(b.Rejected) > max {
		t.Fatalf("%d rejected records kept, more than %d", len(b.Rejected), max)
	}
	if got := b.rejectedRecords(); got != n+1 {
		t.Fatalf("the records stand for %d rejected, want %d", got, n+1)
	}
	if err := ValidateBatch(&b); err != nil {
		t.Fatalf("the bounded records do not validate: %v", err)
	}
	last := b.Rejected[len(b.Rejected)-2]
	if last.Counted != n-MaxRejectedReasons || !strings.HasPrefix(last.Reason, RejectedFurtherReasons) || last.LastRecord() != fmt.Sprintf("reward tx 0 event %d", n-1) {
		t.Fatalf("the further reasons' counting record %+v", last)
	}
	if r := b.Rejected[len(b.Rejected)-1]; r.Kind != RecordBlock || r.Counted != 0 {
		t.Fatalf("a record of another kind %+v", r)
	}
}

// TestRejectAfterDirectAppends: records a source appended to b.Rejected
// itself, before or between Reject calls, are sampled and counted with
// the others.
func TestRejectAfterDirectAppends(t *testing.T) {
	var b Batch
	add := func(from, to int) {
		for i := from; i < to; i++ {
			b.Rejected = append(b.Rejected, NewRejected(RecordNode, 3, fmt.Sprintf("node %05d", i), "node", "contains a NUL byte", nil))
		}
	}
	add(0, 150)
	b.Reject(NewRejected(RecordNode, 3, "node 00150", "node", "contains a NUL byte", nil))
	b.Rejected = b.Rejected[:len(b.Rejected)-1] // a source drops what it added
	add(150, 400)
	if moved := b.Quarantine(time.Now()); moved != 0 {
		t.Fatalf("Quarantine moved %d records of a batch without any", moved)
	}
	if len(b.Rejected) != MaxRejectedSample+1 || b.rejectedRecords() != 400 {
		t.Fatalf("%d records standing for %d, want %d standing for 400", len(b.Rejected), b.rejectedRecords(), MaxRejectedSample+1)
	}
	if c := b.Rejected[MaxRejectedSample]; c.Key != fmt.Sprintf("node %05d", MaxRejectedSample) || c.LastKey != "node 00399" {
		t.Fatalf("counting record %+v", c)
	}
}
