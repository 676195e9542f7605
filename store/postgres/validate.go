package postgres

import (
	"fmt"
	"math"
	"strings"
	"unicode/utf8"

	"github.com/evindex/evindex/store"
)

// validate checks a batch as every backend does (store.ValidateBatch),
// then what PostgreSQL itself cannot hold: text must be UTF-8 without NUL
// bytes, and heights are int8, so at most 2^63-1 (no chain comes near).
func validate(b *store.Batch) error {
	if err := store.ValidateBatch(b); err != nil {
		return err
	}
	v := checker{}
	v.text("source", b.Source)
	v.text("kind", b.Kind)
	for i := range b.Events {
		e := &b.Events[i]
		p := fmt.Sprintf("events[%d]", i)
		v.height(p+".height", e.Height)
		v.text(p+".block_id", e.BlockID)
		v.text(p+".tx_id", e.TxID)
		v.text(p+".type", e.Type)
		v.text(p+".contract", e.Contract)
		for j, a := range e.Addresses {
			v.text(fmt.Sprintf("%s.addresses[%d]", p, j), a)
		}
	}
	for i := range b.Blocks {
		p := fmt.Sprintf("blocks[%d]", i)
		v.height(p+".height", b.Blocks[i].Height)
		v.text(p+".block_id", b.Blocks[i].BlockID)
		v.text(p+".status", b.Blocks[i].Status)
	}
	for i := range b.Rewards {
		r := &b.Rewards[i]
		p := fmt.Sprintf("rewards[%d]", i)
		if r.HasHeight {
			v.height(p+".height", r.Height)
		}
		v.text(p+".account", r.Account)
		v.text(p+".kind", r.Kind)
		v.text(p+".id", r.ID)
		v.text(p+".unit", r.Unit)
		for j, a := range r.Aliases {
			v.text(fmt.Sprintf("%s.aliases[%d]", p, j), a)
		}
	}
	for i := range b.Nodes {
		v.text(fmt.Sprintf("nodes[%d].node", i), b.Nodes[i].Node)
	}
	if b.ReplaceRewards != nil {
		v.height("replace_rewards.from", b.ReplaceRewards.From)
		v.height("replace_rewards.to", b.ReplaceRewards.To)
	}
	if b.Coverage != nil {
		v.height("coverage.from", b.Coverage.From)
		v.height("coverage.to", b.Coverage.To)
	}
	if b.Checkpoint != nil {
		v.height("checkpoint.height", b.Checkpoint.Height)
		v.text("checkpoint.block_id", b.Checkpoint.BlockID)
	}
	if b.Epochs != nil && b.Epochs.BlocksPerEpoch > math.MaxInt64 {
		v.fail("epochs.blocks_per_epoch", "exceeds 2^63-1")
	}
	if b.Lease != nil {
		v.text("lease.owner", b.Lease.Owner)
	}
	return v.err
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
