package postgres

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"math/big"
	"slices"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgtype"

	"github.com/evindex/evindex/store"
)

// Apply writes the batches, in order, in ONE transaction: each batch's
// records together with the checkpoint, coverage and state they complete,
// exactly as the bbolt store does. Rewriting a record with the same
// identity replaces it (an identical one changes nothing), so replays
// never duplicate. It returns store.ErrInvalid (wrapped, naming the
// record) for a malformed batch before anything is written, and
// store.ErrLeaseLost when a batch's Lease is no longer held, writing
// nothing.
//
// The batches are folded into one write plan first (the last write of an
// identity wins, as it would one batch after another), and each table is
// written with a few set-based statements fed by COPY: a transaction costs
// the same number of round trips whether it holds one batch or a thousand.
func (s *Store) Apply(ctx context.Context, batches ...store.Batch) error {
	for i := range batches {
		if err := validate(&batches[i]); err != nil {
			return fmt.Errorf("apply: %w", err)
		}
	}
	if err := ctx.Err(); err != nil {
		return fmt.Errorf("apply: %w", err)
	}
	p, err := planOf(batches, s.now().UTC())
	if err != nil {
		return fmt.Errorf("apply: %w", err)
	}
	if err := pgx.BeginFunc(ctx, s.db, func(tx pgx.Tx) error { return p.write(ctx, tx) }); err != nil {
		return s.redact(fmt.Errorf("apply: %w", err))
	}
	return nil
}

// plan is what a transaction's batches write, folded.
type plan struct {
	now     time.Time
	sources []string // by name
	source  map[string]*sourcePlan
	leases  []store.Lease

	// The records, one per identity: the last write of each wins.
	events        latestOf[eventKey, store.Event]
	blocks        latestOf[blockKey, store.Block]
	rewards       latestOf[rewardKey, store.Reward] // the pending writes, after any revert dropped some
	reverts       []revert
	rejected      latestOf[rejectedKey, store.Rejected]
	eligibilities latestOf[nodeKey, store.Eligibility] // (source, account, epoch)
	epochTotals   latestOf[blockKey, store.EpochTotal] // (source, epoch)
	proposals     latestOf[nodeKey, store.Proposal]    // (source, account, height)
	history       latestOf[nodeKey, store.NodeStatus]
	latest        map[[2]string]store.NodeStatus
	state         map[stateKey][]byte // nil value: delete
	alerts        latestOf[alertKey, store.Alert]
	deliveries    []store.Delivery // in batch order, which their ids follow
}

type stateKey struct{ source, key string }

// sourcePlan is what the batches say about one source's bookkeeping.
type sourcePlan struct {
	kind       string
	epochs     *store.Epochs
	meta       json.RawMessage
	checkpoint *store.Checkpoint
	coverage   []store.Range
	gaps       []store.Range // proposal gaps
}

// revert is a Batch.ReplaceRewards: the source's stored rewards with
// heights in the range that the batch does not rewrite are deleted.
type revert struct {
	source   string
	from, to int64
	keep     []rewardKey
}

func planOf(batches []store.Batch, now time.Time) (*plan, error) {
	p := &plan{now: now, source: map[string]*sourcePlan{}, latest: map[[2]string]store.NodeStatus{}, state: map[stateKey][]byte{}}
	for i := range batches {
		b := &batches[i]
		sp := p.source[b.Source]
		if sp == nil {
			sp = &sourcePlan{}
			p.source[b.Source] = sp
			p.sources = append(p.sources, b.Source)
		}
		if b.Kind != "" {
			sp.kind = b.Kind
		}
		if b.Epochs != nil {
			e := *b.Epochs
			sp.epochs = &e
		}
		if len(b.Meta) > 0 {
			sp.meta = append(json.RawMessage(nil), b.Meta...)
		}
		if b.Checkpoint != nil {
			cp := *b.Checkpoint
			sp.checkpoint = &cp
		}
		if b.Coverage != nil {
			sp.coverage = append(sp.coverage, *b.Coverage)
		}
		if b.Lease != nil {
			l := *b.Lease
			if l.Source == "" {
				l.Source = b.Source
			}
			if l.Source != b.Source {
				return nil, fmt.Errorf("%w: batch %d: lease of %q on a batch of %q", store.ErrInvalid, i, l.Source, b.Source)
			}
			if !slices.Contains(p.leases, l) {
				p.leases = append(p.leases, l)
			}
		}
		for _, blk := range b.Blocks {
			p.blocks.put(blockKey{blk.Source, int64(blk.Height)}, blk)
		}
		for _, e := range b.Events {
			p.events.put(eventKey{e.Source, int64(e.Height), int64(e.TxIndex), int64(e.EventIndex)}, e)
		}
		if r := b.ReplaceRewards; r != nil {
			rv := revert{source: b.Source, from: int64(r.From), to: int64(r.To)}
			keep := map[rewardKey]bool{}
			for j := range b.Rewards {
				k := keyOf(&b.Rewards[j])
				keep[k] = true
				rv.keep = append(rv.keep, k)
			}
			// Pending writes of earlier batches that this revert removes.
			p.rewards.drop(func(k rewardKey, w *store.Reward) bool {
				return k.source == b.Source && w.HasHeight && w.Height >= r.From && w.Height <= r.To && !keep[k]
			})
			p.reverts = append(p.reverts, rv)
		}
		for _, r := range b.Rewards {
			p.rewards.put(keyOf(&r), r)
		}
		for _, n := range b.Nodes {
			p.history.put(nodeKey{n.Source, n.Node, timeKey(n.Time)}, n)
			lk := [2]string{n.Source, n.Node}
			if prev, ok := p.latest[lk]; !ok || !prev.Time.After(n.Time) {
				p.latest[lk] = n // a late older snapshot does not replace the latest
			}
		}
		for _, r := range b.Rejected {
			if r.Time.IsZero() {
				r.Time = now
			}
			p.rejected.put(rejectedKey{r.Source, int64(r.Height), r.Key}, r)
		}
		for _, e := range b.Eligibilities {
			p.eligibilities.put(nodeKey{e.Source, e.Account, int64(e.Epoch)}, e)
		}
		for _, e := range b.EpochTotals {
			p.epochTotals.put(blockKey{e.Source, int64(e.Epoch)}, e)
		}
		for _, pr := range b.Proposals {
			p.proposals.put(nodeKey{pr.Source, pr.Account, int64(pr.Height)}, pr)
		}
		sp.gaps = append(sp.gaps, b.ProposalGaps...)
		for _, a := range b.Alerts {
			p.alerts.put(keyOfAlert(&a), a)
		}
		p.deliveries = append(p.deliveries, b.Deliveries...)
		for k, v := range b.State {
			if v != nil {
				v = append([]byte{}, v...)
			}
			p.state[stateKey{b.Source, k}] = v
		}
	}
	// Rows shared by transactions (a source's row, its lease) are locked
	// in name order, so two transactions of the same sources cannot
	// deadlock.
	slices.Sort(p.sources)
	slices.SortFunc(p.leases, func(a, b store.Lease) int { return strings.Compare(a.Source, b.Source) })
	return p, nil
}

// latestOf keeps one record per identity, the last one written, in the
// order the identities first came.
type latestOf[K comparable, T any] struct {
	at    map[K]int
	items []T
}

func (l *latestOf[K, T]) put(k K, v T) {
	if j, ok := l.at[k]; ok {
		l.items[j] = v
		return
	}
	if l.at == nil {
		l.at = map[K]int{}
	}
	l.at[k] = len(l.items)
	l.items = append(l.items, v)
}

// drop removes the records gone says are gone, keeping the others'
// order.
func (l *latestOf[K, T]) drop(gone func(K, *T) bool) {
	for k, j := range l.at {
		if gone(k, &l.items[j]) {
			delete(l.at, k)
		}
	}
	alive := make([]bool, len(l.items))
	for _, j := range l.at {
		alive[j] = true
	}
	remap := make([]int, len(l.items))
	var kept []T
	for j, v := range l.items {
		if alive[j] {
			remap[j] = len(kept)
			kept = append(kept, v)
		}
	}
	for k, j := range l.at {
		l.at[k] = remap[j]
	}
	l.items = kept
}

func keyOf(r *store.Reward) rewardKey {
	return rewardKey{r.Source, r.Account, timeKey(r.Time), r.ID}
}

// counts are the changes of a source's record counts in a transaction.
type counts struct{ events, blocks, rewards, rejected int64 }

func (p *plan) write(ctx context.Context, tx pgx.Tx) error {
	if err := p.fence(ctx, tx); err != nil {
		return err
	}
	delta := map[string]*counts{}
	for _, name := range p.sources {
		delta[name] = &counts{}
	}
	if err := p.writeBlocks(ctx, tx, delta); err != nil {
		return fmt.Errorf("blocks: %w", err)
	}
	if err := p.writeEvents(ctx, tx, delta); err != nil {
		return fmt.Errorf("events: %w", err)
	}
	if err := p.writeRewards(ctx, tx, delta); err != nil {
		return fmt.Errorf("rewards: %w", err)
	}
	if err := p.writeRejected(ctx, tx, delta); err != nil {
		return fmt.Errorf("rejected: %w", err)
	}
	if err := p.writeEpochTotals(ctx, tx); err != nil {
		return fmt.Errorf("epoch totals: %w", err)
	}
	if err := p.writeAnnouncements(ctx, tx); err != nil {
		return err
	}
	if err := p.writeNodes(ctx, tx); err != nil {
		return fmt.Errorf("nodes: %w", err)
	}
	if err := p.writeAlerts(ctx, tx); err != nil {
		return err
	}
	if err := p.writeState(ctx, tx); err != nil {
		return fmt.Errorf("state: %w", err)
	}
	for _, name := range p.sources {
		if err := p.writeSource(ctx, tx, name, delta[name]); err != nil {
			return fmt.Errorf("source %s: %w", name, err)
		}
	}
	return nil
}

// fence checks, inside the transaction, that every batch's lease is still
// held with its generation. The row stays locked FOR KEY SHARE until the
// commit, so a takeover (which locks it FOR UPDATE) waits for this
// transaction: a former owner's write lands before the new owner starts,
// or not at all. The owner's renewals pass the lock (see lease.go).
func (p *plan) fence(ctx context.Context, tx pgx.Tx) error {
	for _, l := range p.leases {
		var owner string
		var gen int64
		err := tx.QueryRow(ctx, `SELECT owner, generation FROM leases WHERE source = $1 FOR KEY SHARE`, l.Source).Scan(&owner, &gen)
		if errors.Is(err, pgx.ErrNoRows) {
			return fmt.Errorf("%w: source %s has no lease (%s held generation %d)", store.ErrLeaseLost, l.Source, l.Owner, l.Generation)
		}
		if err != nil {
			return fmt.Errorf("lease of %s: %w", l.Source, err)
		}
		if owner != l.Owner || uint64(gen) != l.Generation {
			return fmt.Errorf("%w: source %s: %s held generation %d, the lease is now %q's generation %d",
				store.ErrLeaseLost, l.Source, l.Owner, l.Generation, owner, gen)
		}
	}
	return nil
}

// stage copies rows into a temporary table shaped like table, emptied at
// every commit, for the set-based statements that follow.
func stage(ctx context.Context, tx pgx.Tx, table string, cols []string, rows [][]any) error {
	name := "stage_" + table
	if _, err := tx.Exec(ctx, `CREATE TEMP TABLE IF NOT EXISTS `+name+` (LIKE `+table+`) ON COMMIT DELETE ROWS`); err != nil {
		return err
	}
	_, err := tx.CopyFrom(ctx, pgx.Identifier{name}, cols, pgx.CopyFromRows(rows))
	return err
}

// upsert writes the staged rows of table: new identities are inserted,
// existing ones updated only where they differ (a replay changes nothing).
// It returns how many rows per source were new.
func upsert(ctx context.Context, tx pgx.Tx, table string, key, cols []string, staged int) (map[string]int64, bool, error) {
	stg := "stage_" + table
	all := append(slices.Clone(key), cols...)
	rows, err := tx.Query(ctx, `WITH ins AS (
		INSERT INTO `+table+` (`+list("", all)+`) SELECT `+list("", all)+` FROM `+stg+`
		ON CONFLICT DO NOTHING RETURNING source)
		SELECT source, count(*) FROM ins GROUP BY source`)
	if err != nil {
		return nil, false, err
	}
	added := map[string]int64{}
	var total int64
	for rows.Next() {
		var src string
		var n int64
		if err := rows.Scan(&src, &n); err != nil {
			return nil, false, err
		}
		added[src] = n
		total += n
	}
	if err := rows.Err(); err != nil {
		return nil, false, err
	}
	if total == int64(staged) {
		return added, false, nil
	}
	set := ""
	for i, c := range cols {
		if i > 0 {
			set += ", "
		}
		set += c + " = s." + c
	}
	_, err = tx.Exec(ctx, `UPDATE `+table+` t SET `+set+` FROM `+stg+` s
		WHERE (`+list("t.", key)+`) = (`+list("s.", key)+`)
		AND (`+list("t.", cols)+`) IS DISTINCT FROM (`+list("s.", cols)+`)`)
	return added, true, err
}

func list(prefix string, cols []string) string {
	out := ""
	for i, c := range cols {
		if i > 0 {
			out += ", "
		}
		out += prefix + c
	}
	return out
}

// recordTable is a table of records keyed by identity, with an optional
// lookup table holding a row per element of one of its array columns
// (an event's addresses, a reward's aliases).
type recordTable struct {
	name      string
	key, cols []string
	// lookup, when set, is kept in step: lookup(lookupCol, key...) has
	// one row per distinct element of the array column, skipping "".
	lookup, lookupCol, array string
}

var (
	blockTable = recordTable{name: "blocks", key: []string{"source", "height"},
		cols: []string{"block_id", "block_time_ns", "event_count", "status"}}
	eventTable = recordTable{name: "events", key: []string{"source", "height", "tx_index", "event_index"},
		cols:   []string{"block_id", "block_time_ns", "tx_id", "type", "contract", "addresses", "payload"},
		lookup: "event_addresses", lookupCol: "address", array: "addresses"}
	rewardTable = recordTable{name: "rewards", key: []string{"source", "account", "time_key", "id"},
		cols: []string{"kind", "height", "time_ns", "period_start_ns", "period_end_ns", "amount",
			"unit", "decimals", "aliases", "details", "epoch"},
		lookup: "reward_aliases", lookupCol: "alias", array: "aliases"}
	rejectedTable = recordTable{name: "rejected", key: []string{"source", "height", "key"},
		cols: []string{"kind", "field", "reason", "raw", "raw_size", "time_ns", "counted", "last_key"}}
)

// write stages rows (key columns, then cols) and upserts them, and keeps
// the lookup table in step. It returns how many rows per source were new.
//
// When lowest is set (a source's lowest height among the rows) and every
// source's rows lie above what the table holds, the rows are new: they
// are copied straight into the table and lookupRows() into the lookup
// table, which is most of ingestion and about twice as fast as the
// upsert. (Were another writer to add the same rows meanwhile, against
// the lease, the copy fails on the primary key and the transaction with
// it; nothing is written twice.)
func (t recordTable) write(ctx context.Context, tx pgx.Tx, rows [][]any, lowest map[string]int64, lookupRows func() [][]any) (map[string]int64, error) {
	if lowest != nil {
		fresh, err := beyond(ctx, tx, t.name, lowest)
		if err != nil {
			return nil, err
		}
		if fresh {
			return t.insertNew(ctx, tx, rows, lookupRows)
		}
	}
	if err := stage(ctx, tx, t.name, append(slices.Clone(t.key), t.cols...), rows); err != nil {
		return nil, err
	}
	added, rewrote, err := upsert(ctx, tx, t.name, t.key, t.cols, len(rows))
	if err != nil || t.lookup == "" {
		return added, err
	}
	keyOn := "(" + list("a.", t.key) + ") = (" + list("s.", t.key) + ")"
	if rewrote {
		// A rewritten record may have lost elements.
		_, err := tx.Exec(ctx, `DELETE FROM `+t.lookup+` a USING stage_`+t.name+` s
			WHERE `+keyOn+` AND NOT (a.`+t.lookupCol+` = ANY (s.`+t.array+`))`)
		if err != nil {
			return nil, fmt.Errorf("%s: %w", t.lookup, err)
		}
	}
	_, err = tx.Exec(ctx, `INSERT INTO `+t.lookup+` (`+t.lookupCol+`, `+list("", t.key)+`)
		SELECT a, `+list("s.", t.key)+` FROM stage_`+t.name+` s, unnest(s.`+t.array+`) a
		WHERE a <> '' ON CONFLICT DO NOTHING`)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", t.lookup, err)
	}
	return added, nil
}

func (p *plan) writeBlocks(ctx context.Context, tx pgx.Tx, delta map[string]*counts) error {
	if len(p.blocks.items) == 0 {
		return nil
	}
	rows := make([][]any, len(p.blocks.items))
	for i, b := range p.blocks.items {
		rows[i] = []any{b.Source, int64(b.Height), b.BlockID, nanos(b.BlockTime), int64(b.EventCount), b.Status}
	}
	added, err := blockTable.write(ctx, tx, rows, heightsOf(p.blocks.items, func(b *store.Block) (string, uint64) { return b.Source, b.Height }), nil)
	for src, n := range added {
		delta[src].blocks += n
	}
	return err
}

// heightsOf returns each source's lowest height among recs.
func heightsOf[T any](recs []T, at func(*T) (string, uint64)) map[string]int64 {
	lo := map[string]int64{}
	for i := range recs {
		src, h := at(&recs[i])
		if v, ok := lo[src]; !ok || int64(h) < v {
			lo[src] = int64(h)
		}
	}
	return lo
}

// beyond reports whether every source's records in lowest start above
// the highest height table holds of that source: then none of them can
// be stored already, which is how ingestion appends.
func beyond(ctx context.Context, tx pgx.Tx, table string, lowest map[string]int64) (bool, error) {
	srcs, los := make([]string, 0, len(lowest)), make([]int64, 0, len(lowest))
	for src, lo := range lowest {
		srcs, los = append(srcs, src), append(los, lo)
	}
	var ok bool
	err := tx.QueryRow(ctx, `SELECT bool_and(coalesce((SELECT max(t.height) FROM `+table+` t WHERE t.source = s.src), -1) < s.lo)
		FROM unnest($1::text[], $2::bigint[]) s(src, lo)`, srcs, los).Scan(&ok)
	return ok, err
}

func (p *plan) writeEvents(ctx context.Context, tx pgx.Tx, delta map[string]*counts) error {
	if len(p.events.items) == 0 {
		return nil
	}
	rows := make([][]any, len(p.events.items))
	for i := range p.events.items {
		e := &p.events.items[i]
		addrs := e.Addresses
		if addrs == nil {
			addrs = []string{} // NOT NULL: nil would be sent as NULL
		}
		var payload []byte
		if len(e.Payload) > 0 {
			payload = e.Payload
		}
		rows[i] = []any{e.Source, int64(e.Height), int64(e.TxIndex), int64(e.EventIndex),
			e.BlockID, nanos(e.BlockTime), e.TxID, e.Type, e.Contract, addrs, payload}
	}
	// The addresses' rows, for when the events are all new (one per
	// distinct non-empty address of an event).
	lookup := func() [][]any {
		var out [][]any
		for i := range p.events.items {
			e := &p.events.items[i]
			for j, a := range e.Addresses {
				if a != "" && !slices.Contains(e.Addresses[:j], a) {
					out = append(out, []any{a, e.Source, int64(e.Height), int64(e.TxIndex), int64(e.EventIndex)})
				}
			}
		}
		return out
	}
	added, err := eventTable.write(ctx, tx, rows, heightsOf(p.events.items, func(e *store.Event) (string, uint64) { return e.Source, e.Height }), lookup)
	for src, n := range added {
		delta[src].events += n
	}
	return err
}

func (p *plan) writeRewards(ctx context.Context, tx pgx.Tx, delta map[string]*counts) error {
	// Reverts first: they delete what was stored before this transaction;
	// what the transaction's own batches wrote meanwhile is in p.rewards.items,
	// already folded.
	for _, rv := range p.reverts {
		accts, times, ids := make([]string, len(rv.keep)), make([]int64, len(rv.keep)), make([]string, len(rv.keep))
		for i, k := range rv.keep {
			accts[i], times[i], ids[i] = k.account, k.timeKey, k.id
		}
		var n int64
		err := tx.QueryRow(ctx, `WITH gone AS (
				DELETE FROM rewards r WHERE r.source = $1 AND r.height BETWEEN $2 AND $3
				AND NOT EXISTS (SELECT 1 FROM unnest($4::text[], $5::bigint[], $6::text[]) k(account, time_key, id)
					WHERE (k.account, k.time_key, k.id) = (r.account, r.time_key, r.id))
				RETURNING r.source, r.account, r.time_key, r.id),
			aliases AS (DELETE FROM reward_aliases a USING gone g
				WHERE (a.source, a.account, a.time_key, a.id) = (g.source, g.account, g.time_key, g.id))
			SELECT count(*) FROM gone`, rv.source, rv.from, rv.to, accts, times, ids).Scan(&n)
		if err != nil {
			return fmt.Errorf("replace %d..%d: %w", rv.from, rv.to, err)
		}
		delta[rv.source].rewards -= n
	}
	if len(p.rewards.items) == 0 {
		return nil
	}
	rows := make([][]any, len(p.rewards.items))
	for i := range p.rewards.items {
		r := &p.rewards.items[i]
		amt, _ := new(big.Int).SetString(r.RawAmount, 10) // ValidateBatch checked it: canonical digits
		var height, ps, pe *int64
		if r.HasHeight {
			h := int64(r.Height)
			height = &h
		}
		if !r.PeriodStart.IsZero() { // as the bbolt value: no start, no period
			s, e := nanos(r.PeriodStart), nanos(r.PeriodEnd)
			ps, pe = &s, &e
		}
		aliases := r.Aliases
		if aliases == nil {
			aliases = []string{}
		}
		var details []byte
		if len(r.Details) > 0 {
			details = r.Details
		}
		var epoch *int64
		if r.HasEpoch {
			e := int64(r.Epoch)
			epoch = &e
		}
		rows[i] = []any{r.Source, r.Account, timeKey(r.Time), r.ID, r.Kind, height, nanos(r.Time), ps, pe,
			pgtype.Numeric{Int: amt, Valid: true}, r.Unit, int64(r.Decimals), aliases, details, epoch}
	}
	added, err := rewardTable.write(ctx, tx, rows, nil, nil)
	for src, n := range added {
		delta[src].rewards += n
	}
	return err
}

// writeRejected upserts the rejected records. A source counts the records
// they stand for, not the rows: a counting record stands for many, so the
// change is what the staged rows stand for less what the rows they
// replace stood for.
func (p *plan) writeRejected(ctx context.Context, tx pgx.Tx, delta map[string]*counts) error {
	if len(p.rejected.items) == 0 {
		return nil
	}
	t := rejectedTable
	rows := make([][]any, len(p.rejected.items))
	for i, r := range p.rejected.items {
		raw := r.Raw
		if raw == nil {
			raw = []byte{}
		}
		rows[i] = []any{r.Source, int64(r.Height), r.Key, r.Kind, r.Field, r.Reason, raw, int64(r.RawSize), nanos(r.Time), int64(r.Counted), r.LastKey}
		delta[r.Source].rejected += int64(r.Records())
	}
	if err := stage(ctx, tx, t.name, append(slices.Clone(t.key), t.cols...), rows); err != nil {
		return err
	}
	replaced, err := tx.Query(ctx, `SELECT r.source, sum(greatest(r.counted, 1))::bigint FROM rejected r
		JOIN stage_rejected s ON (r.source, r.height, r.key) = (s.source, s.height, s.key) GROUP BY r.source`)
	if err != nil {
		return err
	}
	var src string
	var n int64
	if _, err := pgx.ForEachRow(replaced, []any{&src, &n}, func() error {
		delta[src].rejected -= n
		return nil
	}); err != nil {
		return err
	}
	_, _, err = upsert(ctx, tx, t.name, t.key, t.cols, len(rows))
	return err
}

// insertNew copies rows none of which the table holds.
func (t recordTable) insertNew(ctx context.Context, tx pgx.Tx, rows [][]any, lookupRows func() [][]any) (map[string]int64, error) {
	if _, err := tx.CopyFrom(ctx, pgx.Identifier{t.name}, append(slices.Clone(t.key), t.cols...), pgx.CopyFromRows(rows)); err != nil {
		return nil, err
	}
	added := map[string]int64{}
	for _, r := range rows {
		added[r[0].(string)]++
	}
	if t.lookup != "" {
		if lr := lookupRows(); len(lr) > 0 {
			if _, err := tx.CopyFrom(ctx, pgx.Identifier{t.lookup}, append([]string{t.lookupCol}, t.key...), pgx.CopyFromRows(lr)); err != nil {
				return nil, fmt.Errorf("%s: %w", t.lookup, err)
			}
		}
	}
	return added, nil
}

// nodeDetails is a snapshot's details as the bbolt store keeps them: JSON
// re-encoded by encoding/json (compact, HTML-escaped).
func nodeDetails(d json.RawMessage) ([]byte, error) {
	if len(d) == 0 {
		return nil, nil
	}
	return json.Marshal(d)
}

func (p *plan) writeNodes(ctx context.Context, tx pgx.Tx) error {
	if len(p.history.items) == 0 {
		return nil
	}
	n := len(p.history.items)
	src, node, tkey, tns := make([]string, n), make([]string, n), make([]int64, n), make([]int64, n)
	conn, sync := make([]*bool, n), make([]*bool, n)
	det := make([][]byte, n)
	for i, s := range p.history.items {
		d, err := nodeDetails(s.Details)
		if err != nil {
			return fmt.Errorf("node %s: %w", s.Node, err)
		}
		src[i], node[i], tkey[i], tns[i], conn[i], sync[i], det[i] = s.Source, s.Node, timeKey(s.Time), nanos(s.Time), s.Connected, s.Synced, d
	}
	_, err := tx.Exec(ctx, `INSERT INTO node_status (source, node, time_key, time_ns, connected, synced, details)
		SELECT * FROM unnest($1::text[], $2::text[], $3::bigint[], $4::bigint[], $5::boolean[], $6::boolean[], $7::bytea[])
		ON CONFLICT (source, node, time_key) DO UPDATE SET time_ns = excluded.time_ns,
			connected = excluded.connected, synced = excluded.synced, details = excluded.details`,
		src, node, tkey, tns, conn, sync, det)
	if err != nil {
		return err
	}
	src, node, tns, conn, sync, det = src[:0], node[:0], tns[:0], conn[:0], sync[:0], det[:0]
	for _, s := range p.latest {
		d, _ := nodeDetails(s.Details) // encoded above
		src, node, tns, conn, sync, det = append(src, s.Source), append(node, s.Node), append(tns, nanos(s.Time)),
			append(conn, s.Connected), append(sync, s.Synced), append(det, d)
	}
	_, err = tx.Exec(ctx, `INSERT INTO node_latest AS l (source, node, time_ns, connected, synced, details)
		SELECT * FROM unnest($1::text[], $2::text[], $3::bigint[], $4::boolean[], $5::boolean[], $6::bytea[])
		ON CONFLICT (source, node) DO UPDATE SET time_ns = excluded.time_ns,
			connected = excluded.connected, synced = excluded.synced, details = excluded.details
		WHERE l.time_ns <= excluded.time_ns`,
		src, node, tns, conn, sync, det)
	return err
}

func (p *plan) writeState(ctx context.Context, tx pgx.Tx) error {
	var putS, delS []string
	var putK, putV, delK [][]byte
	for k, v := range p.state {
		if v == nil {
			delS, delK = append(delS, k.source), append(delK, []byte(k.key))
		} else {
			putS, putK, putV = append(putS, k.source), append(putK, []byte(k.key)), append(putV, v)
		}
	}
	if len(delS) > 0 {
		_, err := tx.Exec(ctx, `DELETE FROM source_state t USING unnest($1::text[], $2::bytea[]) d(source, key)
			WHERE (t.source, t.key) = (d.source, d.key)`, delS, delK)
		if err != nil {
			return err
		}
	}
	if len(putS) > 0 {
		_, err := tx.Exec(ctx, `INSERT INTO source_state (source, key, value)
			SELECT * FROM unnest($1::text[], $2::bytea[], $3::bytea[])
			ON CONFLICT (source, key) DO UPDATE SET value = excluded.value`, putS, putK, putV)
		if err != nil {
			return err
		}
	}
	return nil
}

// writeSource records the source with its counts, kind, epochs, meta and
// checkpoint, and merges its coverage.
func (p *plan) writeSource(ctx context.Context, tx pgx.Tx, name string, d *counts) error {
	sp := p.source[name]
	var eg, eb, en *int64
	var named *bool
	if e := sp.epochs; e != nil {
		g, b, n := nanos(e.Genesis), int64(e.BlockDuration), int64(e.BlocksPerEpoch)
		eg, eb, en, named = &g, &b, &n, &e.Named
	}
	var meta []byte
	if len(sp.meta) > 0 {
		meta = sp.meta
	}
	var cph, cpt, cpu *int64
	var cpb *string
	if cp := sp.checkpoint; cp != nil {
		h, t, u := int64(cp.Height), nanos(cp.Time), nanos(p.now)
		cph, cpt, cpu, cpb = &h, &t, &u, &cp.BlockID
	}
	_, err := tx.Exec(ctx, `INSERT INTO sources AS s (name, kind, epoch_genesis_ns, epoch_block_ns, epoch_blocks, meta,
			events, blocks, rewards, rejected, checkpoint_height, checkpoint_block_id, checkpoint_time_ns, checkpoint_updated_ns, epoch_named)
		VALUES ($1, $2, $3, $4, $5, $6, greatest($7, 0), greatest($8, 0), greatest($9, 0), greatest($14, 0), $10, $11, $12, $13, $15)
		ON CONFLICT (name) DO UPDATE SET
			kind = CASE WHEN excluded.kind <> '' THEN excluded.kind ELSE s.kind END,
			epoch_genesis_ns = coalesce(excluded.epoch_genesis_ns, s.epoch_genesis_ns),
			epoch_block_ns = coalesce(excluded.epoch_block_ns, s.epoch_block_ns),
			epoch_blocks = coalesce(excluded.epoch_blocks, s.epoch_blocks),
			epoch_named = coalesce(excluded.epoch_named, s.epoch_named),
			meta = coalesce(excluded.meta, s.meta),
			events = greatest(s.events + $7, 0),
			blocks = greatest(s.blocks + $8, 0),
			rewards = greatest(s.rewards + $9, 0),
			rejected = greatest(s.rejected + $14, 0),
			checkpoint_height = coalesce(excluded.checkpoint_height, s.checkpoint_height),
			checkpoint_block_id = CASE WHEN excluded.checkpoint_height IS NULL THEN s.checkpoint_block_id ELSE excluded.checkpoint_block_id END,
			checkpoint_time_ns = CASE WHEN excluded.checkpoint_height IS NULL THEN s.checkpoint_time_ns ELSE excluded.checkpoint_time_ns END,
			checkpoint_updated_ns = CASE WHEN excluded.checkpoint_height IS NULL THEN s.checkpoint_updated_ns ELSE excluded.checkpoint_updated_ns END`,
		name, sp.kind, eg, eb, en, meta, d.events, d.blocks, d.rewards, cph, cpb, cpt, cpu, d.rejected, named)
	if err != nil {
		return err
	}
	for _, r := range joinRanges(sp.coverage) {
		if err := mergeRange(ctx, tx, "coverage", name, r); err != nil {
			return fmt.Errorf("coverage: %w", err)
		}
	}
	return nil
}

// joinRanges sorts ranges and joins those that overlap or touch; merging
// the result gives the same coverage as merging each range in turn.
func joinRanges(rs []store.Range) []store.Range {
	if len(rs) < 2 {
		return rs
	}
	rs = slices.Clone(rs)
	slices.SortFunc(rs, func(a, b store.Range) int {
		switch {
		case a.From < b.From:
			return -1
		case a.From > b.From:
			return 1
		}
		return 0
	})
	out := rs[:1]
	for _, r := range rs[1:] {
		last := &out[len(out)-1]
		if r.From <= last.To+1 { // heights are below 2^63: no overflow
			last.To = max(last.To, r.To)
			continue
		}
		out = append(out, r)
	}
	return out
}

// mergeRange adds r to the source's ranges in table (coverage, or a
// table shaped like it), joining the ranges it overlaps or touches, so a
// contiguous history is one row.
func mergeRange(ctx context.Context, tx pgx.Tx, table, source string, r store.Range) error {
	from, to := int64(r.From), int64(r.To)
	below, above := from-1, to
	if to < math.MaxInt64 {
		above = to + 1
	}
	// A range already inside one row (a replay) changes nothing.
	_, err := tx.Exec(ctx, `WITH covered AS (
			SELECT 1 FROM `+table+` WHERE source = $1 AND from_height <= $4 AND to_height >= $5),
		gone AS (
			DELETE FROM `+table+` WHERE source = $1 AND from_height <= $3 AND to_height >= $2
			AND NOT EXISTS (SELECT 1 FROM covered)
			RETURNING from_height, to_height)
		INSERT INTO `+table+` (source, from_height, to_height)
		SELECT $1, least($4, min(from_height)), greatest($5, max(to_height)) FROM gone
		HAVING NOT EXISTS (SELECT 1 FROM covered)`,
		source, below, above, from, to)
	return err
}
