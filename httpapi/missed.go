package httpapi

import (
	"context"
	"io"
	"strconv"

	"github.com/evindex/evindex/store"
)

// listMissed writes the rewards tracked identities were eligible for and
// did not get, for GET /v1/rewards/missed (see the README's "Missed
// rewards and alerts"). They are derived from the stored eligibilities,
// proposals and rewards on every read, so a revert shows at once.
func (s lists) listMissed(ctx context.Context, p *params, w io.Writer) error {
	q := store.MissedQuery(rewardQuery(p))
	lr := p.listRequest()
	if err := p.check(); err != nil {
		return err
	}
	if err := s.sourceExists(ctx, q.Source); err != nil {
		return err
	}
	return writeList(ctx, w, listing[store.MissedReward]{
		name:  "rewards-missed",
		query: q,
		fetch: func(ctx context.Context, cursor string, limit int) (store.Page[store.MissedReward], error) {
			q.Cursor, q.Limit = cursor, limit
			return store.MissedRewards(ctx, s.st, q)
		},
		item:    missedItem,
		header:  missedHeader,
		row:     missedRow,
		parquet: missedParquet,
	}, lr)
}

type missedJSON struct {
	Source        string   `json:"source"`
	Account       string   `json:"account"`
	Coinbase      string   `json:"coinbase"`
	Height        uint64   `json:"height"`
	Epoch         uint64   `json:"epoch"`
	Time          *apiTime `json:"time"`
	Eligibilities uint32   `json:"eligibilities"`
	Reason        string   `json:"reason"`
}

func missedItem(m *store.MissedReward) any {
	return missedJSON{m.Source, m.Account, m.PaidTo, m.Height, m.Epoch, jsonTime(m.Time), m.Eligibilities, m.Reason}
}

var missedHeader = []string{"source", "account", "coinbase", "height", "epoch", "time", "eligibilities", "reason"}

func missedRow(m *store.MissedReward) []string {
	return []string{m.Source, m.Account, m.PaidTo, u64(m.Height), u64(m.Epoch), csvTime(m.Time),
		strconv.FormatUint(uint64(m.Eligibilities), 10), m.Reason}
}

type missedPq struct {
	Source        string `parquet:"source,dict"`
	Account       string `parquet:"account,dict"`
	Coinbase      string `parquet:"coinbase,dict"`
	Height        int64  `parquet:"height"`
	Epoch         int64  `parquet:"epoch"`
	Time          int64  `parquet:"time,timestamp(microsecond)"`
	Eligibilities int32  `parquet:"eligibilities"`
	Reason        string `parquet:"reason,dict"`
}

func missedParquet(w io.Writer) rowWriter[store.MissedReward] {
	return newParquetWriter(w, func(m *store.MissedReward) missedPq {
		return missedPq{m.Source, m.Account, m.PaidTo, int64(m.Height), int64(m.Epoch), micros(m.Time), int32(m.Eligibilities), m.Reason}
	})
}

// listMissedCoverage writes, per tracked identity and epoch, whether its
// eligibilities were seen, for GET /v1/rewards/missed/coverage: misses
// are claimed only in known epochs, so an unknown one is where the list
// of misses cannot be complete.
func (s lists) listMissedCoverage(ctx context.Context, p *params, w io.Writer) error {
	source, accounts := p.str("source"), p.ids("account")
	format := p.format()
	if err := p.check(); err != nil {
		return err
	}
	if err := s.sourceExists(ctx, source); err != nil {
		return err
	}
	return writeList(ctx, w, listing[store.EpochCoverage]{
		name:  "rewards-missed-coverage",
		query: source,
		fetch: func(ctx context.Context, _ string, _ int) (store.Page[store.EpochCoverage], error) {
			rows, err := store.MissedCoverage(ctx, s.st, source, accounts)
			return store.Page[store.EpochCoverage]{Items: rows}, err
		},
		item:    epochCoverageItem,
		header:  epochCoverageHeader,
		row:     epochCoverageRow,
		parquet: epochCoverageParquet,
		unpaged: true,
	}, listRequest{format: format})
}

type epochCoverageJSON struct {
	Source     string `json:"source"`
	Account    string `json:"account"`
	Epoch      uint64 `json:"epoch"`
	FromHeight uint64 `json:"from_height"`
	ToHeight   uint64 `json:"to_height"`
	Coverage   string `json:"coverage"`
}

// coverageWord is how an epoch's coverage is spelled: known or unknown.
func coverageWord(c *store.EpochCoverage) string {
	if c.Known {
		return "known"
	}
	return "unknown"
}

func epochCoverageItem(c *store.EpochCoverage) any {
	return epochCoverageJSON{c.Source, c.Account, c.Epoch, c.FromHeight, c.ToHeight, coverageWord(c)}
}

var epochCoverageHeader = []string{"source", "account", "epoch", "from_height", "to_height", "coverage"}

func epochCoverageRow(c *store.EpochCoverage) []string {
	return []string{c.Source, c.Account, u64(c.Epoch), u64(c.FromHeight), u64(c.ToHeight), coverageWord(c)}
}

type epochCoveragePq struct {
	Source     string `parquet:"source,dict"`
	Account    string `parquet:"account,dict"`
	Epoch      int64  `parquet:"epoch"`
	FromHeight int64  `parquet:"from_height"`
	ToHeight   int64  `parquet:"to_height"`
	Coverage   string `parquet:"coverage,dict"`
}

func epochCoverageParquet(w io.Writer) rowWriter[store.EpochCoverage] {
	return newParquetWriter(w, func(c *store.EpochCoverage) epochCoveragePq {
		return epochCoveragePq{c.Source, c.Account, int64(c.Epoch), int64(c.FromHeight), int64(c.ToHeight), coverageWord(c)}
	})
}
