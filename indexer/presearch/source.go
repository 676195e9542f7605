// Package presearch indexes a Presearch node operator's account through the
// node status API: node status snapshots and connection events from
// frequent polls, and PRE earnings per aligned UTC window from stats
// requests, all within the API's per-node rate limits.
package presearch

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/url"
	"os"
	"slices"
	"strings"
	"time"

	"github.com/rs/zerolog"

	"github.com/evindex/evindex/indexer"
	"github.com/evindex/evindex/store"
)

// Kind is the source kind in configs and on /v1/sources.
const Kind = "presearch"

// KindPeriod is the kind of the source's rewards (one per node and
// window), as the API serves it.
const KindPeriod = "presearch_period"

// Reward unit of Presearch periods.
const Unit = "PRE"

// Source polls one API key. It implements indexer.Source.
type Source struct {
	cfg      Config
	apiKey   string
	endpoint string
	sizes    []time.Duration
	maxNodes int // MaxNodes; tests lower it
}

var _ indexer.Source = (*Source)(nil)

// New checks cfg (see Config.Validate), reads the API key file if one is
// named, and returns a Source ready to Run.
func New(cfg Config) (*Source, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	return newSource(cfg)
}

// NewSource builds the source of a configuration Validate accepted; it is
// how `evindex run` builds a presearch source after checking the whole
// file. Its error names api_key_file when that cannot be read.
func (c *Config) NewSource() (indexer.Source, error) { return newSource(*c) }

func newSource(cfg Config) (*Source, error) {
	key := cfg.APIKey
	if cfg.APIKeyFile != "" {
		b, err := os.ReadFile(cfg.APIKeyFile)
		if err != nil {
			return nil, fmt.Errorf("api_key_file: %w", err)
		}
		key = strings.TrimSpace(string(b))
		if key == "" {
			return nil, fmt.Errorf("api_key_file: %s is empty", cfg.APIKeyFile)
		}
	}
	s := &Source{cfg: cfg, apiKey: key, sizes: windowSizes(cfg.StatsWindow), maxNodes: MaxNodes}
	u, _ := url.Parse(cfg.BaseURL) // Validate checked it
	s.endpoint = strings.TrimRight(u.Redacted(), "/") + statusPath + "<redacted>"
	return s, nil
}

// Name is the configured source name.
func (s *Source) Name() string { return s.cfg.Name }

// Kind is "presearch".
func (s *Source) Kind() string { return Kind }

// Endpoint is the status URL with the API key (and any password in the
// base URL) redacted.
func (s *Source) Endpoint() string { return s.endpoint }

// run is the state of one Run.
type run struct {
	s     *Source
	sink  indexer.Sink
	log   *zerolog.Logger
	lim   limits
	marks map[string]nodeMark

	cursor     time.Time // end of the last stored window
	started    time.Time // cursor when this run began, for progress
	nextStatus time.Time
	live       bool
	contacted  bool // a request succeeded in this run
	announced  bool // the phase has been reported at least once
}

// Run polls until ctx ends. It returns nil when ctx ends, a
// *indexer.RetryAfterError when the API blocked the key or rejected it (then
// marked Failed, with KeyRetryInterval, wrapping ErrKeyRejected), and
// other errors (network, server) for the Runner to retry.
func (s *Source) Run(ctx context.Context, resume indexer.Resume, sink indexer.Sink) error {
	r := &run{s: s, sink: sink, log: sink.Log()}
	if resume.State != nil {
		raw, err := resume.State(stateLimits)
		if err != nil {
			return fmt.Errorf("read %s state: %w", stateLimits, err)
		}
		if r.lim, err = loadLimits(raw); err != nil {
			return err
		}
		if raw, err = resume.State(stateNodes); err != nil {
			return fmt.Errorf("read %s state: %w", stateNodes, err)
		}
		if r.marks, err = loadMarks(raw); err != nil {
			return err
		}
	} else {
		r.marks = map[string]nodeMark{}
	}
	now := s.cfg.Now().UTC()
	if resume.Found {
		r.cursor = time.Unix(int64(resume.Checkpoint.Height), 0).UTC()
	} else {
		r.cursor = s.origin(now)
		r.log.Info().Time("from", r.cursor).Int("backfill_days", s.cfg.BackfillDays).Msg("first start: reading earnings history")
	}
	r.started = r.cursor
	err := r.loop(ctx)
	if ctx.Err() != nil {
		return nil
	}
	return err
}

func (r *run) loop(ctx context.Context) error {
	s := r.s
	for ctx.Err() == nil {
		now := s.cfg.Now().UTC()
		if until := r.lim.blockedUntil(); now.Before(until) {
			if until.Sub(now) > maxBlock {
				// Saved by an earlier build that believed any Retry-After.
				until = now.Add(maxBlock)
				r.lim.BlockedUntil = until.UnixNano()
			}
			r.log.Info().Time("until", until).Msg("waiting for the API's block to lift")
			if err := s.cfg.Sleep(ctx, until.Sub(now)); err != nil {
				return err
			}
			continue
		}
		r.report(now)

		var wake time.Time
		if !now.Before(r.nextStatus) {
			if at := r.lim.statusAllowedAt(now); at.After(now) {
				wake = at
			} else {
				if err := r.pollStatus(ctx, now); err != nil {
					return err
				}
				r.nextStatus = now.Add(s.cfg.StatusInterval)
				continue
			}
		} else {
			wake = r.nextStatus
		}

		w, readyAt := s.nextWindow(r.cursor, now)
		if !readyAt.After(now) {
			if at := r.lim.statsAllowedAt(now); at.After(now) {
				readyAt = at
			} else {
				if err := r.fetchStats(ctx, now, w); err != nil {
					return err
				}
				continue
			}
		}
		if readyAt.Before(wake) {
			wake = readyAt
		}
		d := wake.Sub(now)
		if d <= 0 {
			d = time.Second // never spin, whatever the arithmetic says
		}
		if err := s.cfg.Sleep(ctx, d); err != nil {
			return err
		}
	}
	return nil
}

// report publishes head, phase and backfill progress. The phase is
// reported only once the API answered, so a rejected key never shows as
// backfilling or live.
func (r *run) report(now time.Time) {
	s := r.s
	head := s.horizon(now)
	if head.After(r.cursor) {
		r.sink.SetHead(uint64(head.Unix()))
	} else {
		r.sink.SetHead(uint64(r.cursor.Unix()))
	}
	pending := s.pendingWindows(r.cursor, now)
	live := pending <= 1
	if r.contacted && (!r.announced || live != r.live) {
		r.announced, r.live = true, live
		if live {
			r.sink.SetState(store.StateLive)
		} else {
			r.sink.SetState(store.StateBackfilling)
		}
	}
	if !live && head.After(r.started) {
		done := uint64(max(r.cursor.Sub(r.started), 0) / time.Minute)
		total := uint64(head.Sub(r.started) / time.Minute)
		r.sink.SetProgress(min(done, total), total)
	}
}

// checkpoint is the current position, re-sent with every poll as the
// source's heartbeat.
func (r *run) checkpoint() *store.Checkpoint {
	return &store.Checkpoint{Height: uint64(r.cursor.Unix()), Time: r.cursor}
}

// reserve records a request in the persistent history and makes it
// durable BEFORE the request is sent: a crash after sending must still
// count it, or a crash loop could exceed the API's limits.
func (r *run) reserve(ctx context.Context, stats bool, now time.Time) error {
	r.lim.record(stats, now)
	b := store.Batch{
		State:      map[string][]byte{stateLimits: r.lim.encode()},
		Checkpoint: r.checkpoint(),
	}
	if err := r.sink.Emit(ctx, b); err != nil {
		return fmt.Errorf("save request history: %w", err)
	}
	if err := r.sink.Flush(ctx); err != nil {
		return fmt.Errorf("save request history: %w", err)
	}
	return nil
}

// KeyRetryInterval is how long a source with a rejected API key waits, shown
// failed, before it tries the key again. A key is often rejected for a
// while and then accepted again (disabled and enabled on the Presearch
// dashboard, a subscription renewed): the source then recovers on its own,
// and one request per quarter hour is far below the API's limits.
const KeyRetryInterval = 15 * time.Minute

// failed maps a request error to what the Runner should do. A 429 stores
// when the block should lift and asks the Runner to wait that long; a
// rejected key fails the source until a retry KeyRetryInterval later.
func (r *run) failed(ctx context.Context, what string, now time.Time, err error) error {
	var rl *rateLimitedError
	switch {
	case errors.As(err, &rl):
		r.lim.BlockedUntil = now.Add(rl.after).UnixNano()
		b := store.Batch{State: map[string][]byte{stateLimits: r.lim.encode()}}
		if e := r.sink.Emit(ctx, b); e == nil {
			_ = r.sink.Flush(ctx)
		}
		return &indexer.RetryAfterError{Err: fmt.Errorf("%s: %w", what, err), After: rl.after}
	case errors.Is(err, ErrKeyRejected):
		return &indexer.RetryAfterError{Err: fmt.Errorf("%s: %w", what, err), After: KeyRetryInterval, Failed: true}
	default:
		return fmt.Errorf("%s: %w", what, err)
	}
}

// pollStatus reads every node's status without stats: snapshots when
// something changed (or hourly), events for connection changes, and the
// unchanged checkpoint as a heartbeat.
func (r *run) pollStatus(ctx context.Context, now time.Time) error {
	if err := r.reserve(ctx, false, now); err != nil {
		return err
	}
	a, err := r.s.fetch(ctx, statusQuery{})
	if err != nil {
		return r.failed(ctx, "status request", now, err)
	}
	r.contacted = true
	snaps, events, bad := r.s.observe(now.Truncate(time.Second), a.nodes, r.marks)
	marks, err := json.Marshal(r.marks)
	if err != nil {
		return fmt.Errorf("encode node state: %w", err)
	}
	for _, e := range events {
		// One line per change is routine for a few nodes and a flood
		// for a hostile answer: sampled.
		r.sink.Warn().Str("node", shortKey(e.Addresses[0])).Str("event", e.Type).Time("since", e.BlockTime).Msg("node connection changed")
	}
	// Status-poll rejections sit at the checkpoint, so the same bad node
	// in the next poll rewrites its record instead of adding one.
	a.bad = append(a.bad, bad...)
	return r.sink.Emit(ctx, store.Batch{
		Nodes:      snaps,
		Events:     events,
		Rejected:   rejections(store.RecordNode, r.checkpoint().Height, a, r.s.maxNodes),
		State:      map[string][]byte{stateNodes: marks},
		Checkpoint: r.checkpoint(),
	})
}

// rejections are the rejected records of an answer's unreadable nodes and
// of the nodes past the bound, placed at height.
func rejections(kind string, height uint64, a answer, bound int) []store.Rejected {
	var out []store.Rejected
	for _, b := range a.bad {
		out = append(out, store.NewRejected(kind, height, "node "+b.key, "", b.reason, b.raw))
	}
	if a.skipped > 0 {
		out = append(out, store.NewRejected(kind, height, "nodes beyond the bound", "nodes",
			fmt.Sprintf("%d nodes beyond the bound of %d per answer were not read", a.skipped, bound), nil))
	}
	return out
}

// fetchStats reads one window's stats and stores each node's earnings with
// the checkpoint and coverage the window completes.
func (r *run) fetchStats(ctx context.Context, now time.Time, w window) error {
	if err := r.reserve(ctx, true, now); err != nil {
		return err
	}
	what := fmt.Sprintf("stats request %s..%s", w.start.Format(apiDate), w.end.Format(apiDate))
	a, err := r.s.fetch(ctx, statusQuery{stats: true, start: w.start, end: w.end})
	if err != nil {
		return r.failed(ctx, what, now, err)
	}
	r.contacted = true
	rewards := make([]store.Reward, 0, len(a.nodes))
	for _, n := range a.nodes {
		rw, ok, err := periodReward(n, w)
		if err != nil {
			// One node's unreadable earnings must not hold back every
			// node's window: that node's reward is quarantined.
			a.bad = append(a.bad, badNode{n.key, n.raw, err.Error()})
			continue
		}
		if ok {
			rewards = append(rewards, rw)
		}
	}
	if err := r.sink.Emit(ctx, store.Batch{
		Rewards:    rewards,
		Rejected:   rejections(store.RecordReward, uint64(w.end.Unix()), a, r.s.maxNodes),
		Checkpoint: &store.Checkpoint{Height: uint64(w.end.Unix()), Time: w.end},
		Coverage:   &store.Range{From: uint64(w.start.Unix()) + 1, To: uint64(w.end.Unix())},
	}); err != nil {
		return err
	}
	r.cursor = w.end
	if pending := r.s.pendingWindows(r.cursor, now); pending > 0 {
		r.log.Info().Time("window_end", w.end).Int("windows_left", pending).
			Float64("eta_seconds", r.eta(pending, now).Seconds()).Msg("backfill progress")
	} else if !r.live {
		r.log.Info().Time("checkpoint", w.end).Msg("earnings history complete; following hourly")
	}
	return nil
}

// eta estimates how long the remaining windows take at the stats limit:
// each needs a stats request, and one may go once fewer than statsLimit
// went in the period before it. So the last request goes when the one
// statsLimit before it (sent or planned) leaves the period. Counting from
// the requests actually sent, the estimate falls as windows complete and
// as time passes; counting whole rounds from now, it stayed put for every
// window of a round.
func (r *run) eta(pending int, now time.Time) time.Duration {
	per := statsPer + statsMargin
	sent := slices.Sorted(slices.Values(prune(r.lim.Stats, now, per)))
	last := now
	for range pending {
		at := now
		if n := len(sent); n >= statsLimit {
			at = maxTime(at, time.Unix(0, sent[n-statsLimit]).Add(per))
		}
		sent = append(sent, at.UnixNano())
		last = at
	}
	return last.Sub(now)
}

func maxTime(a, b time.Time) time.Time {
	if b.After(a) {
		return b
	}
	return a
}

// periodReward turns a node's period into its reward for the window. A
// node without a period or with a null total_pre_earned has no reward.
func periodReward(n node, w window) (store.Reward, bool, error) {
	if len(bytes.TrimSpace(n.Period)) == 0 || bytes.Equal(bytes.TrimSpace(n.Period), []byte("null")) {
		return store.Reward{}, false, nil
	}
	var p apiPeriod
	if err := json.Unmarshal(n.Period, &p); err != nil {
		return store.Reward{}, false, fmt.Errorf("node %s: decode period: %w", n.key, err)
	}
	text := string(bytes.TrimSpace(p.TotalPreEarned))
	if text == "" || text == "null" {
		return store.Reward{}, false, nil
	}
	if strings.HasPrefix(text, `"`) {
		// Tolerate an amount sent as a string; its digits are kept as well.
		if err := json.Unmarshal(p.TotalPreEarned, &text); err != nil {
			return store.Reward{}, false, fmt.Errorf("node %s: total_pre_earned: %w", n.key, err)
		}
	}
	raw, err := parseAmount(text, preDecimals)
	if err == nil {
		err = store.CheckAmount(raw.String())
	}
	if err != nil {
		return store.Reward{}, false, fmt.Errorf("node %s: total_pre_earned: %w", n.key, err)
	}
	var details bytes.Buffer
	if err := json.Compact(&details, n.Period); err != nil {
		return store.Reward{}, false, fmt.Errorf("node %s: period: %w", n.key, err)
	}
	return store.Reward{
		Account:     n.key,
		Kind:        KindPeriod,
		ID:          w.start.UTC().Format(time.RFC3339),
		Time:        w.start,
		PeriodStart: w.start,
		PeriodEnd:   w.end,
		RawAmount:   raw.String(),
		Unit:        Unit,
		Decimals:    preDecimals,
		Details:     details.Bytes(),
	}, true, nil
}

// shortKey abbreviates a node public key for log lines.
func shortKey(k string) string {
	if len(k) <= 16 {
		return k
	}
	return "…" + k[len(k)-12:]
}

// PositionsAreTimes reports that a Presearch checkpoint is the Unix second
// that ends an earnings window, not a block height.
func (s *Source) PositionsAreTimes() bool { return true }

var _ indexer.TimePositioned = (*Source)(nil)
