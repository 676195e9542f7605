package bolt

import (
	"bytes"
	"context"
	"encoding/binary"
	"encoding/json"
	"fmt"
	"time"

	bbolt "go.etcd.io/bbolt"

	migrations "github.com/evindex/evindex/migrations/bolt"
	"github.com/evindex/evindex/store"
)

var _ store.EpochTotalReader = (*Store)(nil)

// epochTotalValue is the stored form; the key holds source and epoch.
type epochTotalValue struct {
	Height   uint64    `json:"h"`
	Time     time.Time `json:"t"`
	Total    string    `json:"total"`
	FromFees string    `json:"fees"`
	Minted   string    `json:"minted"`
	Burned   string    `json:"burned"`
	Unit     string    `json:"u"`
	Decimals int       `json:"d"`
}

func epochTotalKey(source string, epoch uint64) []byte {
	return appendU64(appendText(nil, source), epoch)
}

func (w *writer) putEpochTotal(e *store.EpochTotal) error {
	v, err := json.Marshal(epochTotalValue{e.Height, e.Time.UTC(), e.RawTotal, e.RawFromFees, e.RawMinted, e.RawBurned, e.Unit, e.Decimals})
	if err != nil {
		return err
	}
	return w.put(w.tx.Bucket(migrations.BucketEpochTotals), epochTotalKey(e.Source, e.Epoch), v)
}

// EpochTotals returns the payouts q selects in (source, epoch) order; an
// epoch has one a source, so the list is short and comes whole.
func (s *Store) EpochTotals(ctx context.Context, q store.EpochTotalQuery) ([]store.EpochTotal, error) {
	var out []store.EpochTotal
	err := s.view(func(tx *bbolt.Tx) error {
		c := tx.Bucket(migrations.BucketEpochTotals).Cursor()
		var prefix []byte
		if q.Source != "" {
			prefix = appendText(nil, q.Source)
		}
		for k, v := c.Seek(prefix); k != nil && bytes.HasPrefix(k, prefix); k, v = c.Next() {
			if err := ctx.Err(); err != nil {
				return err
			}
			i := bytes.IndexByte(k, sep)
			if i < 0 || len(k) != i+1+8 {
				return fmt.Errorf("epoch total %q: %w", k, store.ErrCorrupt)
			}
			epoch := binary.BigEndian.Uint64(k[i+1:])
			if epoch < q.FromEpoch || q.ToEpoch > 0 && epoch > q.ToEpoch {
				continue
			}
			var ev epochTotalValue
			if err := json.Unmarshal(v, &ev); err != nil {
				return fmt.Errorf("epoch total %q: %w", k, store.ErrCorrupt)
			}
			out = append(out, store.EpochTotal{Source: string(k[:i]), Epoch: epoch, Height: ev.Height, Time: ev.Time,
				RawTotal: ev.Total, RawFromFees: ev.FromFees, RawMinted: ev.Minted, RawBurned: ev.Burned, Unit: ev.Unit, Decimals: ev.Decimals})
		}
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("epoch totals: %w", err)
	}
	return out, nil
}
