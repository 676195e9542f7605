package bolt

import (
	"encoding/binary"
	"fmt"
	"hash/fnv"
	"os"

	bbolt "go.etcd.io/bbolt"

	migrations "github.com/evindex/evindex/migrations/bolt"
	"github.com/evindex/evindex/store"
)

// coreBuckets are the buckets every file at the current schema has. A file
// without one was damaged (or edited) after it was written: every query
// and write would meet a missing bucket, so opening it is refused and
// Check names what is missing.
var coreBuckets = [][]byte{
	migrations.BucketMeta, migrations.BucketSources, migrations.BucketCheckpoints, migrations.BucketCoverage,
	migrations.BucketState, migrations.BucketEvents, migrations.BucketEventsByType, migrations.BucketEventsByCtr,
	migrations.BucketEventsByAddr, migrations.BucketEventsByTx, migrations.BucketBlocks, migrations.BucketRewards,
	migrations.BucketRewardsHeight, migrations.BucketRewardsAlias, migrations.BucketNodes, migrations.BucketNodesLatest,
	migrations.BucketRejected, migrations.BucketPayloadDicts, migrations.BucketEligibilities, migrations.BucketProposals,
	migrations.BucketProposalGaps, migrations.BucketAlerts, migrations.BucketAlertsLatest, migrations.BucketDeliveries,
	migrations.BucketRewardHours, migrations.BucketRewardHoursAlias,
}

// missingBuckets lists the core buckets tx lacks.
func missingBuckets(tx *bbolt.Tx) []string {
	var missing []string
	for _, name := range coreBuckets {
		if tx.Bucket(name) == nil {
			missing = append(missing, string(name))
		}
	}
	return missing
}

// checkSchema refuses a file whose schema is incomplete, at open.
func checkSchema(db *bbolt.DB, path string) error {
	var missing []string
	err := guard("open "+path, func() error {
		return db.View(func(tx *bbolt.Tx) error { missing = missingBuckets(tx); return nil })
	})
	if err != nil {
		return err
	}
	if len(missing) > 0 {
		return fmt.Errorf("open %s: %w: bucket %s is missing", path, store.ErrCorrupt, missing[0])
	}
	return nil
}

// bbolt page flags (go.etcd.io/bbolt/internal/common/page.go).
const (
	branchPageFlag   = 0x01
	leafPageFlag     = 0x02
	metaPageFlag     = 0x04
	freelistPageFlag = 0x10
)

// Where a meta page keeps what, past the 16-byte page header
// (go.etcd.io/bbolt/internal/common/meta.go): magic, version, page size,
// flags, root bucket, free list, high water mark, txid, then the FNV-64a
// checksum of everything before it.
const (
	metaMagic       = 0xED0CDAED
	metaVersion     = 2
	metaChecksumOff = 16 + 56
)

// checkMetaPages reads both meta pages from the file itself. bbolt opens
// a file whose one meta page is damaged from the other, but its checker
// asserts on both, in a goroutine of its own where a failed assertion ends
// the process ("page 0: has unexpected type/flags"): a damaged meta page
// must be found here first. A page that names itself right but fails its
// checksum is damaged too (bbolt passes over it the same way).
func checkMetaPages(path string, pageSize int) error {
	f, err := os.Open(path)
	if err != nil {
		return err
	}
	defer f.Close()
	buf := make([]byte, metaChecksumOff+8)
	for id := range 2 {
		if _, err := f.ReadAt(buf, int64(id*pageSize)); err != nil {
			return fmt.Errorf("meta page %d: %w", id, err)
		}
		le := binary.LittleEndian
		gotID, flags := le.Uint64(buf[0:8]), le.Uint16(buf[8:10])
		if gotID != uint64(id) || flags != metaPageFlag {
			return fmt.Errorf("meta page %d is damaged (it reads as page %d with flags %#x)", id, gotID, flags)
		}
		if le.Uint32(buf[16:20]) != metaMagic || le.Uint32(buf[20:24]) != metaVersion {
			return fmt.Errorf("meta page %d is damaged (no bbolt magic and version)", id)
		}
		h := fnv.New64a()
		h.Write(buf[16:metaChecksumOff])
		if h.Sum64() != le.Uint64(buf[metaChecksumOff:]) {
			return fmt.Errorf("meta page %d is damaged (its checksum does not match)", id)
		}
	}
	return nil
}
