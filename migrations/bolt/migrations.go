// Package migrations holds the ordered, append-only schema steps of the
// evindex bbolt file. The schema version lives in the meta bucket.
package bolt

import (
	"encoding/binary"
	"errors"
	"fmt"

	bbolt "go.etcd.io/bbolt"
)

// Migration is one schema step. Steps are append-only: a released step is
// never edited, a change is a new step.
type Migration struct {
	Version uint64
	Name    string
	Up      func(tx *bbolt.Tx) error
}

// Bucket names. They are part of the file format: never rename one.
var (
	BucketMeta          = []byte("meta")
	BucketSources       = []byte("sources")
	BucketCheckpoints   = []byte("checkpoints")
	BucketCoverage      = []byte("coverage")
	BucketState         = []byte("state")
	BucketEvents        = []byte("events")
	BucketEventsByType  = []byte("events_by_type")
	BucketEventsByCtr   = []byte("events_by_contract")
	BucketEventsByAddr  = []byte("events_by_address")
	BucketEventsByTx    = []byte("events_by_tx")
	BucketBlocks        = []byte("blocks")
	BucketRewards       = []byte("rewards")
	BucketRewardsHeight = []byte("rewards_by_height")
	BucketRewardsAlias  = []byte("rewards_by_alias")
	BucketNodes         = []byte("nodes")
	BucketNodesLatest   = []byte("nodes_latest")
	BucketRejected      = []byte("rejected")
	// BucketPayloadDicts maps a payload dictionary's id (8 bytes, big
	// endian) to its fragments, a JSON array of strings.
	BucketPayloadDicts = []byte("payload_dictionaries")
	// BucketEligibilities (source 0 account 0 epoch(8)), BucketProposals
	// (source 0 account 0 height(8)) and BucketProposalGaps (source 0
	// from(8) -> to(8)) hold what missed rewards are derived from.
	BucketEligibilities = []byte("eligibilities")
	BucketProposals     = []byte("proposals")
	BucketProposalGaps  = []byte("proposal_gaps")
	// BucketEpochTotals maps source|epoch (8 bytes, big endian) to a
	// network's payout of that epoch, JSON.
	BucketEpochTotals = []byte("epoch_totals")
	// BucketAlerts (source 0 starts_at(8) rule 0 subject -> the episode,
	// JSON), BucketAlertsLatest (source 0 rule 0 subject -> starts_at(8)
	// of its newest episode) and BucketDeliveries (id(8), the bucket's
	// sequence -> the outbox row, JSON) hold alerts and the webhook
	// outbox.
	BucketAlerts       = []byte("alerts")
	BucketAlertsLatest = []byte("alerts_latest")
	BucketDeliveries   = []byte("deliveries")
	// BucketRewardDays (source 0 account 0 day(8)) and
	// BucketRewardDaysAlias (source 0 alias 0 day(8) account 0) held the
	// rewards' count and exact sum per UTC day, unit, kind and decimals,
	// which summaries of whole days read instead of the rewards, from
	// version 8 to 9.
	BucketRewardDays      = []byte("reward_days")
	BucketRewardDaysAlias = []byte("reward_days_by_alias")
	// BucketRewardHours (source 0 account 0 hour(8)) and
	// BucketRewardHoursAlias (source 0 alias 0 hour(8) account 0) hold
	// the same per UTC hour, so days, weeks and months of zones whose
	// midnight is not UTC's are whole slots too; they replaced the day
	// totals at version 9.
	BucketRewardHours      = []byte("reward_hours")
	BucketRewardHoursAlias = []byte("reward_hours_by_alias")
)

var keySchemaVersion = []byte("schema_version")

// ErrTooNew means the file was written by a newer evindex.
var ErrTooNew = errors.New("database schema is newer than this evindex")

// All is every step, in order.
var All = []Migration{
	{Version: 1, Name: "core buckets", Up: createBuckets(
		BucketSources, BucketCheckpoints, BucketCoverage, BucketState,
		BucketEvents, BucketEventsByType, BucketEventsByCtr, BucketEventsByAddr, BucketEventsByTx,
		BucketBlocks, BucketRewards, BucketRewardsHeight,
	)},
	{Version: 2, Name: "node status and reward aliases", Up: createBuckets(
		BucketNodes, BucketNodesLatest, BucketRewardsAlias,
	)},
	{Version: 3, Name: "quarantined records", Up: createBuckets(BucketRejected)},
	{Version: 4, Name: "payload dictionaries", Up: recordPayloadDictionaries},
	{Version: 5, Name: "eligibilities and proposals", Up: createBuckets(
		BucketEligibilities, BucketProposals, BucketProposalGaps,
	)},
	{Version: 6, Name: "network reward totals per epoch", Up: createBuckets(BucketEpochTotals)},
	{Version: 7, Name: "alerts and webhook outbox", Up: createBuckets(BucketAlerts, BucketAlertsLatest, BucketDeliveries)},
	{Version: 8, Name: "reward totals per day", Up: backfillRewardDays},
	{Version: 9, Name: "reward totals per hour", Up: rewardHours},
}

// Latest is the schema version this build writes.
func Latest() uint64 { return All[len(All)-1].Version }

func createBuckets(names ...[]byte) func(*bbolt.Tx) error {
	return func(tx *bbolt.Tx) error {
		for _, n := range names {
			if _, err := tx.CreateBucketIfNotExists(n); err != nil {
				return fmt.Errorf("create bucket %s: %w", n, err)
			}
		}
		return nil
	}
}

// Version reads the schema version; 0 means a new file.
func Version(tx *bbolt.Tx) uint64 {
	b := tx.Bucket(BucketMeta)
	if b == nil {
		return 0
	}
	v := b.Get(keySchemaVersion)
	if len(v) != 8 {
		return 0
	}
	return binary.BigEndian.Uint64(v)
}

// Up applies the steps of steps newer than the file's version, in one
// transaction each, and returns the versions before and after. A file newer
// than the last step is refused with ErrTooNew.
func Up(db *bbolt.DB, steps []Migration) (from, to uint64, err error) {
	err = db.View(func(tx *bbolt.Tx) error {
		from = Version(tx)
		return nil
	})
	if err != nil {
		return 0, 0, fmt.Errorf("read schema version: %w", err)
	}
	latest := uint64(0)
	if len(steps) > 0 {
		latest = steps[len(steps)-1].Version
	}
	if from > latest {
		return from, from, fmt.Errorf("%w: file is at version %d, this build knows %d", ErrTooNew, from, latest)
	}
	to = from
	for _, m := range steps {
		if m.Version <= to {
			continue
		}
		err := db.Update(func(tx *bbolt.Tx) error {
			if err := m.Up(tx); err != nil {
				return err
			}
			return setVersion(tx, m.Version)
		})
		if err != nil {
			return from, to, fmt.Errorf("migration %d (%s): %w", m.Version, m.Name, err)
		}
		to = m.Version
	}
	return from, to, nil
}

func setVersion(tx *bbolt.Tx, v uint64) error {
	b, err := tx.CreateBucketIfNotExists(BucketMeta)
	if err != nil {
		return err
	}
	var buf [8]byte
	binary.BigEndian.PutUint64(buf[:], v)
	return b.Put(keySchemaVersion, buf[:])
}
