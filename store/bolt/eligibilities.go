package bolt

import (
	"github.com/evindex/evindex/store"

	"bytes"
	"context"
	"encoding/binary"
	"encoding/json"
	"fmt"
	"time"

	bbolt "go.etcd.io/bbolt"

	migrations "github.com/evindex/evindex/migrations/bolt"
)

// The stored forms of an eligibility and a proposal; the identity is in
// the key.
type eligibilityValue struct {
	Heights    []store.EligibleHeight `json:"heights"`
	FinalAfter uint64                 `json:"final_after"`
	Time       time.Time              `json:"time"`
}

type proposalValue struct {
	ID   string    `json:"id,omitempty"`
	Time time.Time `json:"time"`
}

// putEligibilities writes a batch's eligibilities, proposals and
// proposal gaps.
func (w *writer) putEligibilities(b *store.Batch) error {
	eb := w.tx.Bucket(migrations.BucketEligibilities)
	for i := range b.Eligibilities {
		e := &b.Eligibilities[i]
		v, err := json.Marshal(eligibilityValue{Heights: e.Heights, FinalAfter: e.FinalAfter, Time: e.Time.UTC()})
		if err != nil {
			return err
		}
		if err := w.put(eb, missedKey(b.Source, e.Account, e.Epoch), v); err != nil {
			return fmt.Errorf("eligibility %s/%d: %w", e.Account, e.Epoch, err)
		}
	}
	pb := w.tx.Bucket(migrations.BucketProposals)
	for i := range b.Proposals {
		p := &b.Proposals[i]
		v, err := json.Marshal(proposalValue{ID: p.ID, Time: p.Time.UTC()})
		if err != nil {
			return err
		}
		if err := w.put(pb, missedKey(b.Source, p.Account, p.Height), v); err != nil {
			return fmt.Errorf("proposal %s/%d: %w", p.Account, p.Height, err)
		}
	}
	for _, g := range b.ProposalGaps {
		if err := w.mergeCoverage(w.tx.Bucket(migrations.BucketProposalGaps), b.Source, g); err != nil {
			return fmt.Errorf("proposal gap %d..%d: %w", g.From, g.To, err)
		}
	}
	return nil
}

// missedKey is an announcement's key: source 0 account 0 n(8), where n
// is an epoch or a height.
func missedKey(source, account string, n uint64) []byte {
	return appendU64(appendText(appendText(nil, source), account), n)
}

// splitAccountKey parses "source 0 account 0 n(8)".
func splitAccountKey(k []byte) (source, account string, n uint64, ok bool) {
	i := bytes.IndexByte(k, sep)
	if i < 0 {
		return "", "", 0, false
	}
	j := bytes.IndexByte(k[i+1:], sep)
	if j < 0 || len(k) != i+1+j+1+8 {
		return "", "", 0, false
	}
	return string(k[:i]), string(k[i+1 : i+1+j]), binary.BigEndian.Uint64(k[i+1+j+1:]), true
}

// Eligibilities returns every stored eligibility of source in (account,
// epoch) order.
func (s *Store) Eligibilities(ctx context.Context, source string) ([]store.Eligibility, error) {
	var out []store.Eligibility
	err := s.view(func(tx *bbolt.Tx) error {
		prefix := appendText(nil, source)
		c := tx.Bucket(migrations.BucketEligibilities).Cursor()
		for k, v := c.Seek(prefix); k != nil && bytes.HasPrefix(k, prefix); k, v = c.Next() {
			if err := ctx.Err(); err != nil {
				return err
			}
			src, acct, epoch, ok := splitAccountKey(k)
			var ev eligibilityValue
			if !ok || json.Unmarshal(v, &ev) != nil {
				return store.ErrCorrupt
			}
			out = append(out, store.Eligibility{Source: src, Account: acct, Epoch: epoch, Heights: ev.Heights, FinalAfter: ev.FinalAfter, Time: ev.Time})
		}
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("eligibilities of %s: %w", source, err)
	}
	return out, nil
}

// Proposals returns the proposals of (source, account) with heights in
// [from, to], in height order.
func (s *Store) Proposals(ctx context.Context, source, account string, from, to uint64) ([]store.Proposal, error) {
	var out []store.Proposal
	err := s.view(func(tx *bbolt.Tx) error {
		hi := missedKey(source, account, to)
		c := tx.Bucket(migrations.BucketProposals).Cursor()
		for k, v := c.Seek(missedKey(source, account, from)); k != nil && bytes.Compare(k, hi) <= 0; k, v = c.Next() {
			src, acct, h, ok := splitAccountKey(k)
			var pv proposalValue
			if !ok || json.Unmarshal(v, &pv) != nil {
				return store.ErrCorrupt
			}
			out = append(out, store.Proposal{Source: src, Account: acct, Height: h, ID: pv.ID, Time: pv.Time})
		}
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("proposals of %s/%s: %w", source, account, err)
	}
	return out, nil
}

// ProposalGaps returns the ranges of source in which announcements may
// have been lost, ascending and disjoint.
func (s *Store) ProposalGaps(ctx context.Context, source string) ([]store.Range, error) {
	out, err := s.ranges(migrations.BucketProposalGaps, source)
	if err != nil {
		return nil, fmt.Errorf("proposal gaps of %s: %w", source, err)
	}
	return out, nil
}

var _ store.MissedReader = (*Store)(nil)
