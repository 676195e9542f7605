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

// Apply writes the batches, in order, in ONE transaction: each batch's
// records together with the checkpoint, coverage and state they complete.
// After a crash the file holds all of them or none. Rewriting a record with
// the same identity replaces it, so replays never duplicate. It returns
// ErrInvalid (wrapped, naming the record) for a malformed batch, before
// anything is written.
func (s *Store) Apply(ctx context.Context, batches ...store.Batch) error {
	for i := range batches {
		if err := store.ValidateBatch(&batches[i]); err != nil {
			return fmt.Errorf("apply: %w", err)
		}
	}
	if err := ctx.Err(); err != nil {
		return fmt.Errorf("apply: %w", err)
	}
	var (
		sizeBefore int64
		added      map[uint64]*payloadCodec
		log        *writeLog
	)
	// A damaged page makes bbolt panic (or fault, through the mapping) in
	// the middle of a write; the transaction rolls back as the panic
	// passes, and the caller gets ErrCorrupt naming the file instead of a
	// dead process.
	err := guard("write "+s.path, func() error {
		return s.db.Update(func(tx *bbolt.Tx) error {
			sizeBefore = tx.Size()
			TuneWriteTx(tx)
			w := writer{tx: tx, s: s, infos: map[string]*sourceRecord{}, hours: hourTotals{}}
			if s.recordWrites != nil {
				w.log = newWriteLog(tx)
				log = w.log
			}
			defer func() { added = w.addedCodecs }()
			for i := range batches {
				if err := w.apply(&batches[i]); err != nil {
					return fmt.Errorf("batch %d of %s: %w", i, batches[i].Source, err)
				}
			}
			if err := w.finish(); err != nil {
				return err
			}
			return w.saveInfos()
		})
	})
	if err != nil {
		return fmt.Errorf("apply: %w", err)
	}
	s.codecs.add(added)
	if log != nil {
		s.recordWrites(log.ops)
	}
	s.releaseAfterGrowth(sizeBefore)
	return nil
}

// TuneWriteTx sets the bbolt knobs every Apply transaction writes with:
// the file's growth step and the buckets' fill on split. It is exported
// so a benchmark replaying Apply's writes with bbolt alone writes with the
// same settings.
func TuneWriteTx(tx *bbolt.Tx) {
	// Under the writer's lock: bbolt reads it when this commit grows the file.
	tx.DB().AllocSize = growStep(tx.Size())
	// Events and blocks arrive in key order per source, and type and
	// contract index entries append at the tail of a few prefixes, and
	// an address's entries at the tail of its own: fuller pages on
	// split keep the file small. (Tx ids are spread over the key
	// space; they keep bbolt's default.)
	for _, name := range appendOrderBuckets {
		tx.Bucket(name).FillPercent = 0.9
	}
}

// releaseStep is how much the file grows between two ReleaseMapped calls
// of a writing store. Inserting touches pages all over the file (an index
// keyed by tx id, the B-trees' branch pages); without a release they all
// stay resident, and the process's RSS would grow with the file.
const releaseStep = 32 << 20

// releaseAfterGrowth hands back the mapped pages whenever the file's data
// crossed a multiple of releaseStep in the last commit.
func (s *Store) releaseAfterGrowth(before int64) {
	var after int64
	_ = s.db.View(func(tx *bbolt.Tx) error { after = tx.Size(); return nil })
	if after/releaseStep != before/releaseStep {
		s.ReleaseMapped()
	}
}

var appendOrderBuckets = [][]byte{
	migrations.BucketEvents, migrations.BucketBlocks, migrations.BucketEventsByType, migrations.BucketEventsByCtr,
	migrations.BucketEventsByAddr,
	// A height's rejected records come in event order, not in key
	// order, but heights come in order: a flood of them is one height's
	// worth of half-empty pages at the default fill.
	migrations.BucketRejected,
}

// sourceRecord is the stored form of a source's bookkeeping.
type sourceRecord struct {
	Name    string          `json:"name"`
	Kind    string          `json:"kind"`
	Epochs  *store.Epochs   `json:"epochs,omitempty"`
	Meta    json.RawMessage `json:"meta,omitempty"`
	Events  uint64          `json:"events"`
	Blocks  uint64          `json:"blocks"`
	Rewards uint64          `json:"rewards"`
	// Rejected counts the source's quarantined records.
	Rejected uint64 `json:"rejected,omitempty"`
	// PayloadDictionary is the id its events' payloads are packed with.
	PayloadDictionary uint64 `json:"payload_dictionary,omitempty"`
}

type writer struct {
	tx    *bbolt.Tx
	s     *Store
	infos map[string]*sourceRecord
	marks map[string]*sourceMarks
	block blockCache
	// lastTxGroup is the tx entry written last, skipped for the
	// transaction's next events.
	lastTxGroup []byte
	// pkBuf and keyBuf are scratch space for keys (see putEvent).
	pkBuf, keyBuf []byte
	// valBuf is scratch space for an event's value (see putEvent).
	valBuf []byte
	// addedCodecs are the payload dictionaries this transaction wrote.
	addedCodecs map[uint64]*payloadCodec
	// log gathers the writes for Options.RecordWrites; nil when off.
	log *writeLog
	// hours are the changes to the hour totals, written by finish: a
	// day's rewards come in several batches of a transaction.
	hours hourTotals
}

// blockCache remembers the last block record looked up, since a batch's
// events come in height order.
type blockCache struct {
	source string
	height uint64
	valid  bool
	found  bool
	id     string
	time   time.Time
}

// lookup returns the id and time of the block record at (source, height).
func (c *blockCache) lookup(tx *bbolt.Tx, source string, height uint64) (string, time.Time, bool) {
	if c.valid && c.height == height && c.source == source {
		return c.id, c.time, c.found
	}
	*c = blockCache{source: source, height: height, valid: true}
	k := blockKey(source, height)
	if v := tx.Bucket(migrations.BucketBlocks).Get(k); v != nil {
		var b store.Block
		if decodeBlock(k, v, &b) == nil {
			c.found, c.id, c.time = true, b.BlockID, b.BlockTime
		}
	}
	return c.id, c.time, c.found
}

// blocksOf returns a blockLookup over tx with its own cache.
func blocksOf(tx *bbolt.Tx) blockLookup {
	var c blockCache
	return func(source string, height uint64) (string, time.Time, bool) {
		return c.lookup(tx, source, height)
	}
}

func (w *writer) info(name string) (*sourceRecord, error) {
	if r, ok := w.infos[name]; ok {
		return r, nil
	}
	r := &sourceRecord{Name: name}
	if v := w.tx.Bucket(migrations.BucketSources).Get([]byte(name)); v != nil {
		if err := json.Unmarshal(v, r); err != nil {
			return nil, fmt.Errorf("source %s: %w", name, store.ErrCorrupt)
		}
	}
	w.infos[name] = r
	return r, nil
}

func (w *writer) saveInfos() error {
	b := w.tx.Bucket(migrations.BucketSources)
	for name, r := range w.infos {
		v, err := json.Marshal(r)
		if err != nil {
			return err
		}
		if err := w.put(b, []byte(name), v); err != nil {
			return err
		}
	}
	return nil
}

func (w *writer) apply(b *store.Batch) error {
	info, err := w.info(b.Source)
	if err != nil {
		return err
	}
	if b.Kind != "" {
		info.Kind = b.Kind
	}
	if b.Epochs != nil {
		e := *b.Epochs
		info.Epochs = &e
	}
	if len(b.Meta) > 0 {
		info.Meta = append(json.RawMessage(nil), b.Meta...)
	}
	if b.PayloadDictionary != nil {
		if err := w.useDictionary(info, b.PayloadDictionary); err != nil {
			return err
		}
	}
	// Blocks first: an event whose block record is already written with
	// the same id and time refers to it instead of repeating them.
	for i := range b.Blocks {
		if err := w.putBlock(info, &b.Blocks[i]); err != nil {
			return fmt.Errorf("block %d: %w", b.Blocks[i].Height, err)
		}
	}
	pc, err := w.sourceCodec(info)
	if err != nil {
		return err
	}
	for i := range b.Events {
		if err := w.putEvent(info, pc, &b.Events[i]); err != nil {
			return fmt.Errorf("event %d/%d/%d: %w", b.Events[i].Height, b.Events[i].TxIndex, b.Events[i].EventIndex, err)
		}
	}
	if b.ReplaceRewards != nil {
		if err := w.deleteRewardsNotIn(info, b.Source, *b.ReplaceRewards, b.Rewards); err != nil {
			return fmt.Errorf("replace rewards %d..%d: %w", b.ReplaceRewards.From, b.ReplaceRewards.To, err)
		}
	}
	for i := range b.Rewards {
		if err := w.putReward(info, &b.Rewards[i]); err != nil {
			return fmt.Errorf("reward %s/%s: %w", b.Rewards[i].Account, b.Rewards[i].ID, err)
		}
	}
	for i := range b.Nodes {
		if err := w.putNode(&b.Nodes[i]); err != nil {
			return fmt.Errorf("node %s: %w", b.Nodes[i].Node, err)
		}
	}
	for i := range b.EpochTotals {
		if err := w.putEpochTotal(&b.EpochTotals[i]); err != nil {
			return fmt.Errorf("epoch total %d: %w", b.EpochTotals[i].Epoch, err)
		}
	}
	for i := range b.Rejected {
		if err := w.putRejected(info, &b.Rejected[i]); err != nil {
			return fmt.Errorf("rejected %d/%s: %w", b.Rejected[i].Height, b.Rejected[i].Key, err)
		}
	}
	if err := w.putEligibilities(b); err != nil {
		return err
	}
	if err := w.putAlerts(b); err != nil {
		return err
	}
	for k, v := range b.State {
		sb := w.tx.Bucket(migrations.BucketState)
		key := append(appendText(nil, b.Source), k...)
		if v == nil {
			err = w.del(sb, key)
		} else {
			err = w.put(sb, key, append([]byte(nil), v...))
		}
		if err != nil {
			return fmt.Errorf("state %s: %w", k, err)
		}
	}
	// Checkpoints and coverage are only read after the commit, so they are
	// gathered per source and written once per transaction (finish): a
	// stream's transaction holds a batch per height.
	if b.Coverage != nil || b.Checkpoint != nil {
		m := w.marks[b.Source]
		if m == nil {
			m = &sourceMarks{}
			if w.marks == nil {
				w.marks = map[string]*sourceMarks{}
			}
			w.marks[b.Source] = m
		}
		if b.Coverage != nil {
			m.addRange(*b.Coverage)
		}
		if b.Checkpoint != nil {
			cp := *b.Checkpoint
			m.checkpoint = &cp
		}
	}
	return nil
}

// sourceMarks is what a transaction's batches of one source say about
// its progress.
type sourceMarks struct {
	checkpoint *store.Checkpoint // the last batch's
	ranges     []store.Range     // coverage, adjacent ranges joined
}

func (m *sourceMarks) addRange(r store.Range) {
	if n := len(m.ranges); n > 0 {
		last := &m.ranges[n-1]
		if r.From >= last.From && (last.To == ^uint64(0) || r.From <= last.To+1) {
			last.To = max(last.To, r.To)
			return
		}
	}
	m.ranges = append(m.ranges, r)
}

// finish writes the gathered coverage, checkpoints and hour totals.
func (w *writer) finish() error {
	if err := w.flushHourTotals(); err != nil {
		return fmt.Errorf("reward hour totals: %w", err)
	}
	for source, m := range w.marks {
		for _, r := range m.ranges {
			if err := w.mergeCoverage(w.tx.Bucket(migrations.BucketCoverage), source, r); err != nil {
				return fmt.Errorf("coverage of %s: %w", source, err)
			}
		}
		if m.checkpoint != nil {
			cp := *m.checkpoint
			cp.UpdatedAt = w.s.now().UTC()
			v, err := json.Marshal(cp)
			if err != nil {
				return err
			}
			if err := w.put(w.tx.Bucket(migrations.BucketCheckpoints), []byte(source), v); err != nil {
				return fmt.Errorf("checkpoint of %s: %w", source, err)
			}
		}
	}
	return nil
}

func indexKey(value string, pk []byte) []byte {
	return appendIndexKey(make([]byte, 0, len(value)+1+len(pk)), value, pk)
}

func appendIndexKey(dst []byte, value string, pk []byte) []byte {
	return append(appendText(dst, value), pk...)
}

// eventIndexKeys lists the secondary index entries of an event. An event
// whose contract is its type's prefix has no by_contract entry (its
// by_type entry finds it); with stale set, that entry is listed anyway,
// since files of earlier versions hold one for every event.
//
// fn must not keep the key: every key is built in the same scratch buffer
// (bbolt copies the keys it stores).
func eventIndexKeys(e *store.Event, pk []byte, stale bool, scratch *[]byte, fn func(bucket []byte, key []byte) error) error {
	indexKey := func(value string, pk []byte) []byte {
		*scratch = appendIndexKey((*scratch)[:0], value, pk)
		return *scratch
	}
	if err := fn(migrations.BucketEventsByType, indexKey(e.Type, pk)); err != nil {
		return err
	}
	if e.Contract != "" && (stale || !contractInType(e.Type, e.Contract)) {
		if err := fn(migrations.BucketEventsByCtr, indexKey(e.Contract, pk)); err != nil {
			return err
		}
	}
	if e.TxID != "" && stale {
		// Earlier files hold one tx entry per event; new ones, one per
		// transaction (putEvent writes and removes those).
		if err := fn(migrations.BucketEventsByTx, indexKey(e.TxID, pk)); err != nil {
			return err
		}
	}
	for i, a := range e.Addresses {
		if a == "" || containsBefore(e.Addresses, i, a) {
			continue
		}
		if err := fn(migrations.BucketEventsByAddr, indexKey(a, pk)); err != nil {
			return err
		}
	}
	return nil
}

func containsBefore(list []string, i int, s string) bool {
	for _, x := range list[:i] {
		if x == s {
			return true
		}
	}
	return false
}

func (w *writer) putEvent(info *sourceRecord, pc *payloadCodec, e *store.Event) error {
	// Keys are built in the writer's scratch buffers: bbolt copies the
	// keys it stores, and these were a good share of Apply's garbage.
	w.pkBuf = appendEventKey(w.pkBuf[:0], e.Source, e.Height, e.TxIndex, e.EventIndex)
	pk := w.pkBuf
	id, t, found := w.block.lookup(w.tx, e.Source, e.Height)
	joined := found && id == e.BlockID && t.Equal(e.BlockTime)
	w.valBuf = encodeEventInto(w.valBuf, e, joined, pc)
	eb := w.tx.Bucket(migrations.BucketEvents)
	var prevTx string
	if old := eb.Get(pk); old != nil {
		if bytes.Equal(old, w.valBuf) {
			return nil // a replay: nothing changes
		}
		var prev store.Event
		if err := decodeEvent(pk, old, &prev, anyBlock, w.codec); err != nil {
			return err
		}
		prevTx = prev.TxID
		if err := eventIndexKeys(&prev, pk, true, &w.keyBuf, func(b, k []byte) error { return w.del(w.tx.Bucket(b), k) }); err != nil {
			return err
		}
	} else {
		info.Events++
	}
	// bbolt holds the value until the commit: give it one of its size.
	if err := w.put(eb, pk, bytes.Clone(w.valBuf)); err != nil {
		return err
	}
	if prevTx != "" && prevTx != e.TxID {
		if err := w.dropTxGroup(prevTx, e.Source, e.Height, e.TxIndex); err != nil {
			return err
		}
	}
	if e.TxID != "" {
		w.keyBuf = appendTxGroupKey(w.keyBuf[:0], e.TxID, e.Source, e.Height, e.TxIndex)
		if gk := w.keyBuf; !bytes.Equal(gk, w.lastTxGroup) { // a transaction's events come together
			if err := w.put(w.tx.Bucket(migrations.BucketEventsByTx), gk, nil); err != nil {
				return err
			}
			w.lastTxGroup = append(w.lastTxGroup[:0], gk...)
		}
	}
	return eventIndexKeys(e, pk, false, &w.keyBuf, func(b, k []byte) error { return w.put(w.tx.Bucket(b), k, nil) })
}

// dropTxGroup removes the tx entry of a transaction's events once none of
// them carries the tx id any more.
func (w *writer) dropTxGroup(txID, source string, height uint64, txIndex uint32) error {
	prefix := appendU32(appendU64(appendText(nil, source), height), txIndex)
	c := w.tx.Bucket(migrations.BucketEvents).Cursor()
	for k, v := c.Seek(prefix); k != nil && bytes.HasPrefix(k, prefix); k, v = c.Next() {
		var e store.Event
		if err := decodeEvent(k, v, &e, anyBlock, w.codec); err != nil {
			return err
		}
		if e.TxID == txID {
			return nil
		}
	}
	w.lastTxGroup = nil
	return w.del(w.tx.Bucket(migrations.BucketEventsByTx), txGroupKey(txID, source, height, txIndex))
}

// anyBlock stands in for block records where only an event's other
// fields are read.
func anyBlock(string, uint64) (string, time.Time, bool) { return "", time.Time{}, true }

func (w *writer) putBlock(info *sourceRecord, b *store.Block) error {
	k := blockKey(b.Source, b.Height)
	v := encodeBlock(b)
	bb := w.tx.Bucket(migrations.BucketBlocks)
	old := bb.Get(k)
	if old == nil {
		info.Blocks++
	} else if bytes.Equal(old, v) {
		w.block = blockCache{source: b.Source, height: b.Height, valid: true, found: true, id: b.BlockID, time: decodedTime(b.BlockTime)}
		return nil
	} else {
		var prev store.Block
		if err := decodeBlock(k, old, &prev); err != nil {
			return err
		}
		if prev.BlockID != b.BlockID || !prev.BlockTime.Equal(b.BlockTime) {
			if err := w.unjoinEvents(info, prev); err != nil {
				return err
			}
		}
	}
	// The block's events usually follow in the same batch: they find its
	// id and time here instead of reading the record back.
	w.block = blockCache{source: b.Source, height: b.Height, valid: true, found: true, id: b.BlockID, time: decodedTime(b.BlockTime)}
	return w.put(bb, k, v)
}

// decodedTime is t as a value round trip returns it: UTC, nanoseconds
// since the epoch, zero for the zero time.
func decodedTime(t time.Time) time.Time {
	if t.IsZero() {
		return time.Time{}
	}
	return time.Unix(0, t.UnixNano()).UTC()
}

// unjoinEvents rewrites the events at a block's height that take their
// block id and time from its record with them spelled out, before the
// record changes: a replaced block does not change stored events.
func (w *writer) unjoinEvents(info *sourceRecord, prev store.Block) error {
	pc, err := w.sourceCodec(info)
	if err != nil {
		return err
	}
	eb := w.tx.Bucket(migrations.BucketEvents)
	prefix := appendU64(appendText(nil, prev.Source), prev.Height)
	type rewrite struct{ k, v []byte }
	var redo []rewrite
	c := eb.Cursor()
	for k, v := c.Seek(prefix); k != nil && bytes.HasPrefix(k, prefix); k, v = c.Next() {
		if !eventJoined(v) {
			continue
		}
		var e store.Event
		err := decodeEvent(k, v, &e, func(string, uint64) (string, time.Time, bool) { return prev.BlockID, prev.BlockTime, true }, w.codec)
		if err != nil {
			return err
		}
		redo = append(redo, rewrite{bytes.Clone(k), encodeEvent(&e, false, pc)})
	}
	for _, r := range redo {
		if err := w.put(eb, r.k, r.v); err != nil {
			return err
		}
	}
	return nil
}

func rewardHeightKey(source string, height uint64, pk []byte) []byte {
	return append(appendU64(appendText(nil, source), height), pk...)
}

func (w *writer) putReward(info *sourceRecord, r *store.Reward) error {
	pk := rewardKey(r)
	v, err := encodeReward(r)
	if err != nil {
		return err
	}
	rb := w.tx.Bucket(migrations.BucketRewards)
	if old := rb.Get(pk); old != nil {
		if bytes.Equal(old, v) {
			return nil
		}
		if err := w.deleteRewardIndexes(pk, old); err != nil {
			return err
		}
	} else {
		info.Rewards++
	}
	if err := w.put(rb, pk, v); err != nil {
		return err
	}
	// Counted as it reads back (a time of the Unix epoch reads back as
	// the zero time), which is what a summary of the rewards sees.
	stored := *r
	if r.Time.Equal(time.Unix(0, 0)) {
		stored.Time = time.Time{}
	}
	if err := w.hours.count(&stored, 1); err != nil {
		return err
	}
	if r.HasHeight {
		if err := w.put(w.tx.Bucket(migrations.BucketRewardsHeight), rewardHeightKey(r.Source, r.Height, pk), nil); err != nil {
			return err
		}
	}
	for _, a := range r.Aliases {
		if err := w.put(w.tx.Bucket(migrations.BucketRewardsAlias), indexKey(a, pk), nil); err != nil {
			return err
		}
	}
	return nil
}

// deleteRewardIndexes takes the stored reward pk=v out of the indexes
// and the hour totals, before it is replaced or deleted.
func (w *writer) deleteRewardIndexes(pk, v []byte) error {
	var prev store.Reward
	if err := decodeReward(pk, v, &prev); err != nil {
		return err
	}
	if err := w.hours.count(&prev, -1); err != nil {
		return err
	}
	if prev.HasHeight {
		if err := w.del(w.tx.Bucket(migrations.BucketRewardsHeight), rewardHeightKey(prev.Source, prev.Height, pk)); err != nil {
			return err
		}
	}
	for _, a := range prev.Aliases {
		if err := w.del(w.tx.Bucket(migrations.BucketRewardsAlias), indexKey(a, pk)); err != nil {
			return err
		}
	}
	return nil
}

// deleteRewardsNotIn removes the source's stored rewards with heights in r
// that keep does not rewrite.
func (w *writer) deleteRewardsNotIn(info *sourceRecord, source string, r store.Range, keep []store.Reward) error {
	kept := make(map[string]bool, len(keep))
	for i := range keep {
		kept[string(rewardKey(&keep[i]))] = true
	}
	prefix := appendText(nil, source)
	lo := appendU64(bytes.Clone(prefix), r.From)
	c := w.tx.Bucket(migrations.BucketRewardsHeight).Cursor()
	var doomed [][]byte
	for k, _ := c.Seek(lo); k != nil && bytes.HasPrefix(k, prefix); k, _ = c.Next() {
		if len(k) < len(prefix)+8 {
			return store.ErrCorrupt
		}
		if binary.BigEndian.Uint64(k[len(prefix):]) > r.To {
			break
		}
		if pk := k[len(prefix)+8:]; !kept[string(pk)] {
			doomed = append(doomed, bytes.Clone(pk))
		}
	}
	rb := w.tx.Bucket(migrations.BucketRewards)
	for _, pk := range doomed {
		v := rb.Get(pk)
		if v == nil {
			continue
		}
		if err := w.deleteRewardIndexes(pk, v); err != nil {
			return err
		}
		if err := w.del(rb, pk); err != nil {
			return err
		}
		if info.Rewards > 0 {
			info.Rewards--
		}
	}
	return nil
}

func (w *writer) putNode(n *store.NodeStatus) error {
	v, err := encodeNode(n)
	if err != nil {
		return err
	}
	if err := w.put(w.tx.Bucket(migrations.BucketNodes), nodeKey(n.Source, n.Node, n.Time), v); err != nil {
		return err
	}
	lb := w.tx.Bucket(migrations.BucketNodesLatest)
	lk := appendText(appendText(nil, n.Source), n.Node)
	if old := lb.Get(lk); old != nil {
		var prev store.NodeStatus
		if err := decodeNode(old, &prev); err == nil && prev.Time.After(n.Time) {
			return nil // an older snapshot arrived late; latest stays
		}
	}
	return w.put(lb, lk, v)
}

// mergeCoverage adds r to the source's proven ranges, joining ranges that
// overlap or touch, so a contiguous history is one range.
func (w *writer) mergeCoverage(b *bbolt.Bucket, source string, r store.Range) error {
	prefix := appendText(nil, source)
	from, to := r.From, r.To
	var doomed [][]byte
	c := b.Cursor()
	for k, v := c.Seek(prefix); k != nil && bytes.HasPrefix(k, prefix); k, v = c.Next() {
		if len(k) != len(prefix)+8 || len(v) != 8 {
			return store.ErrCorrupt
		}
		f, t := binary.BigEndian.Uint64(k[len(prefix):]), binary.BigEndian.Uint64(v)
		if to != ^uint64(0) && f > to+1 {
			break
		}
		if t != ^uint64(0) && t+1 < from {
			continue
		}
		from, to = min(from, f), max(to, t)
		doomed = append(doomed, bytes.Clone(k))
	}
	for _, k := range doomed {
		if err := w.del(b, k); err != nil {
			return err
		}
	}
	return w.put(b, appendU64(prefix, from), appendU64(nil, to))
}
