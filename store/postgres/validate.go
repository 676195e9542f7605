package postgres

import (
	"fmt"
	"math"
	"strings"
	"unicode/utf8"

	"github.com/evindex/evindex/store"
)

// validate checks a batch as every backend does (store.ValidateBatch),
// then what only PostgreSQL cannot hold: heights are int8, so at most
// 2^63-1 (no chain comes near), and the few text fields ValidateBatch
// leaves unchecked must be UTF-8 without NUL bytes.
func validate(b *store.Batch) error {
	if err := store.ValidateBatch(b); err != nil {
		return err
	}
	v := checker{}
	v.text("source", b.Source)
	v.text("kind", b.Kind)
	for i := range b.Events {
		v.height(fmt.Sprintf("events[%d].height", i), b.Events[i].Height)
	}
	for i := range b.Blocks {
		v.height(fmt.Sprintf("blocks[%d].height", i), b.Blocks[i].Height)
	}
	for i := range b.Rewards {
		if b.Rewards[i].HasHeight {
			v.height(fmt.Sprintf("rewards[%d].height", i), b.Rewards[i].Height)
		}
	}
	for i, r := range b.Rewards {
		if r.HasEpoch {
			v.height(fmt.Sprintf("rewards[%d].epoch", i), r.Epoch)
		}
	}
	for i, e := range b.EpochTotals {
		v.height(fmt.Sprintf("epoch_totals[%d].epoch", i), e.Epoch)
		v.height(fmt.Sprintf("epoch_totals[%d].height", i), e.Height)
	}
	for i := range b.Rejected {
		v.height(fmt.Sprintf("rejected[%d].height", i), b.Rejected[i].Height)
	}
	for i, e := range b.Eligibilities {
		v.height(fmt.Sprintf("eligibilities[%d].epoch", i), e.Epoch)
		v.height(fmt.Sprintf("eligibilities[%d].final_after", i), e.FinalAfter)
		for j, h := range e.Heights {
			v.height(fmt.Sprintf("eligibilities[%d].heights[%d]", i, j), h.Height)
		}
	}
	for i := range b.Proposals {
		v.height(fmt.Sprintf("proposals[%d].height", i), b.Proposals[i].Height)
	}
	for i, g := range b.ProposalGaps {
		v.height(fmt.Sprintf("proposal_gaps[%d].from", i), g.From)
		v.height(fmt.Sprintf("proposal_gaps[%d].to", i), g.To)
	}
	if r := b.ReplaceRewards; r != nil {
		v.height("replace_rewards.from", r.From)
		v.height("replace_rewards.to", r.To)
	}
	if r := b.Coverage; r != nil {
		v.height("coverage.from", r.From)
		v.height("coverage.to", r.To)
	}
	if cp := b.Checkpoint; cp != nil {
		v.height("checkpoint.height", cp.Height)
		v.text("checkpoint.block_id", cp.BlockID)
	}
	if b.Epochs != nil && b.Epochs.BlocksPerEpoch > math.MaxInt64 {
		v.fail("epochs.blocks_per_epoch", "exceeds 2^63-1")
	}
	if b.Lease != nil {
		v.text("lease.owner", b.Lease.Owner)
	}
	return v.err
}

// storable reports whether PostgreSQL can take every string as text (UTF-8
// without NUL). A query naming a value that is not cannot match a stored
// row: it answers empty (as bbolt does) instead of a database error.
func storable(ss ...string) bool {
	for _, s := range ss {
		if strings.IndexByte(s, 0) >= 0 || !utf8.ValidString(s) {
			return false
		}
	}
	return true
}

// checker keeps the first problem found.
type checker struct{ err error }

func (c *checker) fail(field, what string) {
	if c.err == nil {
		c.err = fmt.Errorf("%w: %s: %s", store.ErrInvalid, field, what)
	}
}

func (c *checker) text(field, s string) {
	switch {
	case strings.IndexByte(s, 0) >= 0:
		c.fail(field, "contains a NUL byte")
	case !utf8.ValidString(s):
		c.fail(field, "not valid UTF-8")
	}
}

func (c *checker) height(field string, h uint64) {
	if h > math.MaxInt64 {
		c.fail(field, fmt.Sprintf("%d exceeds 2^63-1, the PostgreSQL store's limit", h))
	}
}
