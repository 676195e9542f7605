package flow

import (
	"context"
	"fmt"
	"math"
	"slices"
	"sync"
	"time"

	"github.com/onflow/flow/protobuf/go/flow/access"
	"github.com/onflow/flow/protobuf/go/flow/entities"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/evindex/evindex/store"
)

// chunk is one span of heights fetched with one range call per event type.
type chunk struct {
	seq      int
	from, to uint64
}

// chunkResult is a fetched chunk as one batch. The node answered n heights
// from the chunk's start; short means fewer than asked (it clamped the
// range to its sealed head), and then the backfill stops there.
type chunkResult struct {
	seq   int
	batch store.Batch
	n     uint64
	short bool
	err   error
}

// backfill fetches the segment's heights with GetEventsForHeightRange:
// Workers goroutines fetch chunks of at most MaxRange heights, each from a
// node of the segment under that node's RequestsPerSecond limit, and the
// chunks are emitted strictly in height order, each as one batch with its
// coverage (and, with advance, its checkpoint), whichever node answered.
// It stops early when a node clamped a range to its sealed head; r.next
// says how far it got.
func (r *run) backfill(ctx context.Context, seg segment, advance bool) error {
	cfg := r.s.cfg.Backfill
	from, to := seg.from, seg.to
	total := to - from + 1
	r.sink.SetState(store.StateBackfilling)
	r.sink.SetProgress(0, total)
	r.log.Info().Uint64("from", from).Uint64("to", to).Int("workers", cfg.Workers).
		Int("event_types", len(r.s.cfg.EventTypes)).Msg("backfill started")

	ctx, cancel := context.WithCancel(ctx)
	var wg sync.WaitGroup
	defer func() {
		cancel()
		wg.Wait()
	}()
	chunks := (total + cfg.MaxRange - 1) / cfg.MaxRange
	// window bounds the chunks fetched ahead of the one due next, so a slow
	// chunk cannot make the reorder buffer grow without limit.
	window := make(chan struct{}, 2*cfg.Workers)
	// Results are buffered to the window, so workers keep fetching while
	// the collector waits for a commit.
	results := make(chan chunkResult, cap(window))
	tasks := r.planChunks(ctx, &wg, from, to, chunks, window)
	for w := range cfg.Workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for c := range tasks {
				f := r.fetchChunk(ctx, seg.nodes, c, w)
				// Turning the answers into records is CPU work, not
				// waiting: it runs beside the worker's next call, so a
				// worker's cycle is its call alone. The window bounds
				// these goroutines to the chunks in flight.
				wg.Add(1)
				go func() {
					defer wg.Done()
					select {
					case results <- r.buildChunk(f, advance):
					case <-ctx.Done():
					}
				}()
			}
		}()
	}
	return r.collect(ctx, from, total, int(chunks), results, window)
}

// planChunks hands out the chunks of [from, to] in order, each once a
// window slot is free.
func (r *run) planChunks(ctx context.Context, wg *sync.WaitGroup, from, to, chunks uint64, window chan struct{}) <-chan chunk {
	step := r.s.cfg.Backfill.MaxRange
	tasks := make(chan chunk)
	wg.Add(1)
	go func() {
		defer wg.Done()
		defer close(tasks)
		for i := uint64(0); i < chunks; i++ {
			c := chunk{seq: int(i), from: from + i*step}
			c.to = min(c.from+step-1, to)
			select {
			case window <- struct{}{}:
			case <-ctx.Done():
				return
			}
			select {
			case tasks <- c:
			case <-ctx.Done():
				return
			}
		}
	}()
	return tasks
}

// collect emits the fetched chunks in order. A failed chunk ends the
// backfill once everything before it is emitted; the Runner resumes after
// the last emitted chunk.
func (r *run) collect(ctx context.Context, from, total uint64, chunks int, results <-chan chunkResult, window chan struct{}) error {
	pending := map[int]chunkResult{}
	began, lastLog := r.s.now(), r.s.now()
	for seq := 0; seq < chunks; {
		var res chunkResult
		select {
		case res = <-results:
		case <-ctx.Done():
			return ctx.Err()
		}
		pending[res.seq] = res
		for {
			res, ok := pending[seq]
			if !ok {
				break
			}
			delete(pending, seq)
			if res.err != nil {
				return res.err
			}
			if res.n > 0 {
				if err := r.emit(ctx, res.batch); err != nil {
					return err
				}
			}
			<-window
			seq++
			done := r.next - from
			r.sink.SetProgress(done, total)
			if now := r.s.now(); now.Sub(lastLog) >= r.s.logEvery {
				lastLog = now
				r.logProgress(done, total, now.Sub(began))
			}
			if res.short {
				r.log.Info().Uint64("height", r.next-1).Msg("access node clamped the range to its sealed head; continuing from there")
				return nil
			}
		}
	}
	r.log.Info().Uint64("to", r.next-1).Float64("took_seconds", r.s.now().Sub(began).Seconds()).Msg("backfill done")
	return nil
}

func (r *run) logProgress(done, total uint64, elapsed time.Duration) {
	ev := r.log.Info().Uint64("done", done).Uint64("total", total)
	if secs := elapsed.Seconds(); secs > 0 && done > 0 {
		rate := float64(done) / secs
		ev = ev.Float64("heights_per_second", rate).
			Float64("eta_seconds", math.Round(float64(total-done)/rate))
	}
	ev.Msg("backfill progress")
}

// fetched is a chunk's answers before decoding: for each event type, the
// results of the heights from the chunk's start that every call answered.
type fetched struct {
	seq   int
	from  uint64
	n     uint64 // heights answered by every call
	short bool
	types [][]*access.EventsResponse_Result
	err   error
}

// fetchChunk fetches a chunk from the first of nodes that answers: a node
// that is unavailable, overloaded or slow goes into its backoff and the
// next one takes the chunk over. Nodes in backoff are tried last. The
// chunk's batch is the same whichever node answered, so nothing is lost or
// repeated across the switch. Worker w calls through its own connection
// to each node.
func (r *run) fetchChunk(ctx context.Context, nodes []*node, c chunk, w int) fetched {
	var f fetched
	for _, n := range r.preferred(slices.Clone(nodes)) {
		f = r.fetchChunkFrom(ctx, n, c, w)
		if f.err == nil || !retryable(f.err) || ctx.Err() != nil {
			return f
		}
		r.log.Warn().Err(f.err).Str("endpoint", n.addr).Msg("access node failed a range call; trying another node of the range")
	}
	return f
}

// fetchChunkFrom makes one range call per event type and keeps the
// heights every call answered.
func (r *run) fetchChunkFrom(ctx context.Context, n *node, c chunk, w int) fetched {
	f := fetched{seq: c.seq, from: c.from, n: c.to - c.from + 1}
	client := n.rangeClient(w)
	for _, typ := range r.s.cfg.EventTypes {
		if err := n.lim.wait(ctx); err != nil {
			return fetched{seq: c.seq, err: err}
		}
		cctx, cancel := context.WithTimeout(ctx, r.s.callTimeout)
		resp, err := client.GetEventsForHeightRange(cctx, &access.GetEventsForHeightRangeRequest{
			Type:                 typ,
			StartHeight:          c.from,
			EndHeight:            c.to,
			EventEncodingVersion: entities.EventEncodingVersion_JSON_CDC_V0,
		})
		cancel()
		if status.Code(err) == codes.OutOfRange {
			// The node's sealed head is below this chunk (another node
			// behind a load balancer): nothing here is answerable yet.
			return fetched{seq: c.seq, short: true}
		}
		what := fmt.Sprintf("events %s for heights %d-%d", typ, c.from, c.to)
		if err != nil {
			return fetched{seq: c.seq, err: r.callError(ctx, n, what, err)}
		}
		// flow-go clamps the end to the sealed head: read what came back.
		results := resp.GetResults()
		if len(results) == 0 || uint64(len(results)) > c.to-c.from+1 {
			return fetched{seq: c.seq, err: fmt.Errorf("access node %s: %s: %d results", n.addr, what, len(results))}
		}
		for i, res := range results {
			if want := c.from + uint64(i); res.GetBlockHeight() != want {
				return fetched{seq: c.seq, err: fmt.Errorf("access node %s: %s: result %d is height %d, want %d", n.addr, what, i, res.GetBlockHeight(), want)}
			}
		}
		if got := uint64(len(results)); got < f.n {
			f.n, f.short = got, true
		}
		f.types = append(f.types, results)
	}
	n.succeeded()
	return f
}

// buildChunk decodes a fetched chunk into one batch covering the heights
// every call answered.
func (r *run) buildChunk(f fetched, advance bool) chunkResult {
	if f.err != nil || len(f.types) == 0 {
		return chunkResult{seq: f.seq, short: f.short, err: f.err}
	}
	events := 0
	for _, results := range f.types {
		for _, res := range results[:f.n] {
			events += len(res.GetEvents())
		}
	}
	b := store.Batch{Blocks: make([]store.Block, 0, f.n), Events: make([]store.Event, 0, events)}
	var merged []*entities.Event
	for i := range f.n {
		res := f.types[0][i]
		bd := blockData{height: res.GetBlockHeight(), id: res.GetBlockId(), ts: res.GetBlockTimestamp(), events: res.GetEvents()}
		if len(f.types) > 1 {
			// Each type's events come separately; a block holds them in
			// (transaction, event) order. addHeight keeps no reference to
			// the list, so one list serves every height.
			merged = merged[:0]
			for _, results := range f.types {
				merged = append(merged, results[i].GetEvents()...)
			}
			slices.SortStableFunc(merged, func(a, b *entities.Event) int {
				if a.TransactionIndex != b.TransactionIndex {
					return cmpU32(a.TransactionIndex, b.TransactionIndex)
				}
				return cmpU32(a.EventIndex, b.EventIndex)
			})
			bd.events = merged
		}
		r.dec.addHeight(&b, bd)
	}
	end := f.from + f.n - 1
	if advance {
		last := b.Blocks[len(b.Blocks)-1]
		b.Checkpoint = &store.Checkpoint{Height: end, BlockID: last.BlockID, Time: last.BlockTime}
	}
	b.Coverage = &store.Range{From: f.from, To: end}
	return chunkResult{seq: f.seq, batch: b, n: f.n, short: f.short}
}

func cmpU32(a, b uint32) int {
	switch {
	case a < b:
		return -1
	case a > b:
		return 1
	}
	return 0
}

// limiter is a token bucket: rate tokens per second, up to burst saved.
// A waiter takes a token now or reserves the next one and sleeps until it
// is due, so calls across all workers stay under the rate.
type limiter struct {
	mu     sync.Mutex
	rate   float64
	burst  float64
	tokens float64
	last   time.Time
	now    func() time.Time
}

func newLimiter(rate float64, burst int, now func() time.Time) *limiter {
	b := float64(max(burst, 1))
	return &limiter{rate: rate, burst: b, tokens: b, last: now(), now: now}
}

func (l *limiter) wait(ctx context.Context) error {
	l.mu.Lock()
	now := l.now()
	l.tokens = min(l.burst, l.tokens+now.Sub(l.last).Seconds()*l.rate)
	l.last = now
	l.tokens--
	var d time.Duration
	if l.tokens < 0 {
		d = time.Duration(-l.tokens / l.rate * float64(time.Second))
	}
	l.mu.Unlock()
	if d <= 0 {
		return ctx.Err()
	}
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}
