package httpapi

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/evindex/evindex/store"
)

type checkpointJSON struct {
	Height    uint64   `json:"height"`
	BlockID   string   `json:"block_id"`
	Time      *apiTime `json:"time"`
	UpdatedAt *apiTime `json:"updated_at"`
}

type progressJSON struct {
	Done       uint64  `json:"done"`
	Total      uint64  `json:"total"`
	Rate       float64 `json:"rate"`
	ETASeconds float64 `json:"eta_seconds"`
}

type epochsJSON struct {
	Genesis              apiTime `json:"genesis"`
	BlockDurationSeconds float64 `json:"block_duration_seconds"`
	BlocksPerEpoch       uint64  `json:"blocks_per_epoch"`
}

// sourceJSON is the source object of API.md: a store.SourceStatus (what
// the runner reports) merged with the store.SourceInfo the store keeps.
type sourceJSON struct {
	Name           string          `json:"name"`
	Kind           string          `json:"kind"`
	Endpoint       string          `json:"endpoint"`
	State          string          `json:"state"`
	Checkpoint     *checkpointJSON `json:"checkpoint"`
	HeadHeight     uint64          `json:"head_height"`
	Lag            uint64          `json:"lag"`
	LagThreshold   uint64          `json:"lag_threshold"`
	StalledSince   *apiTime        `json:"stalled_since"`
	StallThreshold float64         `json:"stall_threshold"` // seconds
	EventsIndexed  uint64          `json:"events_indexed"`
	BlocksIndexed  uint64          `json:"blocks_indexed"`
	RewardsIndexed uint64          `json:"rewards_indexed"`
	Rejected       uint64          `json:"rejected"`
	Warnings       uint64          `json:"warnings"`
	LastErrorAt    *apiTime        `json:"last_error_at"`
	Owner          string          `json:"owner"`
	LastError      string          `json:"last_error"`
	Reconnects     uint64          `json:"reconnects"`
	LiveSince      *apiTime        `json:"live_since"`
	Progress       *progressJSON   `json:"progress"`
	Meta           json.RawMessage `json:"meta,omitempty"`
	Epochs         *epochsJSON     `json:"epochs,omitempty"`
	Endpoints      []endpointJSON  `json:"endpoints"`
	Gaps           []gapJSON       `json:"gaps"`
}

// endpointJSON is one upstream node of a source and the heights it
// serves; from and to are null while the node has not said.
type endpointJSON struct {
	Endpoint  string  `json:"endpoint"`
	From      *uint64 `json:"from"`
	To        *uint64 `json:"to"`
	State     string  `json:"state"`
	LastError string  `json:"last_error"`
}

// gapJSON is a height range no reachable upstream node serves.
type gapJSON struct {
	From   uint64 `json:"from"`
	To     uint64 `json:"to"`
	Reason string `json:"reason"`
}

func endpointsJSON(st *store.SourceStatus) ([]endpointJSON, []gapJSON) {
	eps, gaps := []endpointJSON{}, []gapJSON{}
	if st == nil {
		return eps, gaps
	}
	for _, e := range st.Endpoints {
		ej := endpointJSON{Endpoint: e.Endpoint, State: e.State, LastError: e.LastError}
		if e.Known {
			from, to := e.From, e.To
			ej.From, ej.To = &from, &to
		}
		eps = append(eps, ej)
	}
	for _, g := range st.Gaps {
		gaps = append(gaps, gapJSON{From: g.From, To: g.To, Reason: g.Reason})
	}
	return eps, gaps
}

func sourceObject(st *store.SourceStatus, in *store.SourceInfo) sourceJSON {
	var o sourceJSON
	if st != nil {
		o = sourceJSON{Name: st.Name, Kind: st.Kind, Endpoint: st.Endpoint, State: string(st.State),
			HeadHeight: st.HeadHeight, Lag: st.Lag, LagThreshold: st.LagThreshold,
			LastError: st.LastError, Reconnects: st.Reconnects, Warnings: st.Warnings, LiveSince: jsonTime(st.LiveSince),
			LastErrorAt: jsonTime(st.LastErrorAt), Owner: st.Owner,
			StalledSince: jsonTime(st.StalledSince), StallThreshold: st.StallThreshold.Seconds()}
		if p := st.Progress; p != nil {
			o.Progress = &progressJSON{Done: p.Done, Total: p.Total, Rate: p.Rate, ETASeconds: p.ETA.Seconds()}
		}
	} else {
		o = sourceJSON{Name: in.Name, Kind: in.Kind, State: string(store.StateStopped)}
	}
	o.Endpoints, o.Gaps = endpointsJSON(st)
	if in == nil {
		return o
	}
	if o.Kind == "" {
		o.Kind = in.Kind
	}
	o.EventsIndexed, o.BlocksIndexed, o.RewardsIndexed, o.Rejected = in.Events, in.Blocks, in.Rewards, in.Rejected
	if cp := in.Checkpoint; cp != nil {
		o.Checkpoint = &checkpointJSON{cp.Height, cp.BlockID, jsonTime(cp.Time), jsonTime(cp.UpdatedAt)}
	}
	if len(in.Meta) > 0 && json.Valid(in.Meta) {
		o.Meta = in.Meta
	}
	if e := in.Epochs; e != nil && e.BlocksPerEpoch > 0 {
		o.Epochs = &epochsJSON{apiTime(e.Genesis.UTC()), e.BlockDuration.Seconds(), e.BlocksPerEpoch}
	}
	return o
}

// allSources merges the configured sources with the ones the store knows,
// ordered by name.
func (s *Server) allSources(ctx context.Context) ([]sourceJSON, error) {
	infos, err := s.st.Sources(ctx)
	if err != nil {
		return nil, err
	}
	byName := map[string]*store.SourceInfo{}
	for i := range infos {
		byName[infos[i].Name] = &infos[i]
	}
	var out []sourceJSON
	for _, st := range s.sources() {
		out = append(out, sourceObject(&st, byName[st.Name]))
		delete(byName, st.Name)
	}
	for _, in := range byName {
		out = append(out, sourceObject(nil, in))
	}
	slices.SortFunc(out, func(a, b sourceJSON) int { return strings.Compare(a.Name, b.Name) })
	return out, nil
}

func (s *Server) handleListSources(w http.ResponseWriter, r *http.Request) error {
	p := requestParams(r, "sources")
	format := p.format()
	if err := p.check(); err != nil {
		return err
	}
	// A handful of sources: one read, no cursor.
	return serveList(w, r, listing[sourceJSON]{
		name: "sources",
		fetch: func(ctx context.Context, _ string, _ int) (store.Page[sourceJSON], error) {
			all, err := s.allSources(ctx)
			return store.Page[sourceJSON]{Items: all}, err
		},
		item:    func(o *sourceJSON) any { return o },
		header:  sourceHeader,
		row:     sourceRow,
		parquet: sourceParquet,
	}, listRequest{format: format})
}

var sourceHeader = []string{"name", "kind", "endpoint", "state", "checkpoint_height", "checkpoint_block_id", "checkpoint_time",
	"checkpoint_updated_at", "head_height", "lag", "lag_threshold", "events_indexed", "blocks_indexed", "rewards_indexed",
	"last_error", "reconnects", "live_since", "progress_done", "progress_total", "progress_rate", "progress_eta_seconds",
	"meta", "epochs", "rejected", "warnings", "last_error_at", "endpoints", "gaps", "owner", "stalled_since", "stall_threshold"}

func sourceRow(o *sourceJSON) []string {
	var cpHeight, cpBlock, cpTime, cpUpdated string
	if cp := o.Checkpoint; cp != nil {
		cpHeight, cpBlock, cpTime, cpUpdated = u64(cp.Height), cp.BlockID, csvTimePtr(cp.Time), csvTimePtr(cp.UpdatedAt)
	}
	var done, total, rate, eta string
	if p := o.Progress; p != nil {
		done, total = u64(p.Done), u64(p.Total)
		rate, eta = strconv.FormatFloat(p.Rate, 'f', -1, 64), strconv.FormatFloat(p.ETASeconds, 'f', -1, 64)
	}
	epochs := ""
	if o.Epochs != nil {
		b, _ := json.Marshal(o.Epochs)
		epochs = string(b)
	}
	return []string{o.Name, o.Kind, o.Endpoint, o.State, cpHeight, cpBlock, cpTime, cpUpdated,
		u64(o.HeadHeight), u64(o.Lag), u64(o.LagThreshold), u64(o.EventsIndexed), u64(o.BlocksIndexed), u64(o.RewardsIndexed),
		o.LastError, u64(o.Reconnects), csvTimePtr(o.LiveSince), done, total, rate, eta, csvRaw(o.Meta), epochs,
		u64(o.Rejected), u64(o.Warnings), csvTimePtr(o.LastErrorAt), jsonCell(o.Endpoints), jsonCell(o.Gaps), o.Owner,
		csvTimePtr(o.StalledSince), strconv.FormatFloat(o.StallThreshold, 'f', -1, 64)}
}

// jsonCell is a list as one CSV or Parquet cell: its JSON, or empty when
// it has no item.
func jsonCell[T any](items []T) string {
	if len(items) == 0 {
		return ""
	}
	b, _ := json.Marshal(items)
	return string(b)
}

func csvTimePtr(t *apiTime) string {
	if t == nil {
		return ""
	}
	return csvTime(time.Time(*t))
}

// source finds one configured or stored source, or answers 404.
func (s *Server) source(r *http.Request, name string) (sourceJSON, error) {
	var st *store.SourceStatus
	for _, c := range s.sources() {
		if c.Name == name {
			st = &c
			break
		}
	}
	in, err := s.st.Source(r.Context(), name)
	switch {
	case err == nil:
		return sourceObject(st, &in), nil
	case !errors.Is(err, store.ErrNotFound):
		return sourceJSON{}, err
	case st != nil:
		return sourceObject(st, nil), nil
	default:
		return sourceJSON{}, s.lists().pathSourceExists(r.Context(), name)
	}
}

// noParams refuses every query parameter of an endpoint that takes none.
func noParams(r *http.Request, name string) error {
	return requestParams(r, name).check()
}

func (s *Server) handleGetSource(w http.ResponseWriter, r *http.Request) error {
	if err := noParams(r, "a source"); err != nil {
		return err
	}
	o, err := s.source(r, pathParam(r, "name"))
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, o)
	return nil
}

func (s *Server) handleCoverage(w http.ResponseWriter, r *http.Request) error {
	if err := noParams(r, "coverage"); err != nil {
		return err
	}
	name := pathParam(r, "name")
	if _, err := s.source(r, name); err != nil {
		return err
	}
	ranges, err := s.st.Coverage(r.Context(), name)
	if err != nil {
		return err
	}
	if ranges == nil {
		ranges = []store.Range{}
	}
	writeJSON(w, http.StatusOK, struct {
		Source string        `json:"source"`
		Ranges []store.Range `json:"ranges"`
	}{name, ranges})
	return nil
}

func (s *Server) handleHealthz(w http.ResponseWriter, r *http.Request) error {
	// Reading the source list proves the database is open and readable.
	if _, err := s.st.Sources(r.Context()); err != nil {
		s.log.Error().Err(err).Msg("health check: store not readable")
		writeJSON(w, http.StatusServiceUnavailable, map[string]string{"status": "unavailable", "reason": "database not readable"})
		return nil
	}
	writeJSON(w, http.StatusOK, map[string]string{"status": "ok"})
	return nil
}

type readiness struct {
	Name   string `json:"name"`
	State  string `json:"state"`
	Ready  bool   `json:"ready"`
	Reason string `json:"reason,omitempty"`
}

// gapSummary says which heights a live source lacks.
func gapSummary(name string, gaps []store.Gap) string {
	var b strings.Builder
	b.WriteString("heights not indexed, no reachable node serves them: ")
	for i, g := range gaps {
		if i > 0 {
			b.WriteString(", ")
		}
		fmt.Fprintf(&b, "%d-%d", g.From, g.To)
	}
	b.WriteString(" (see /v1/sources/" + name + ")")
	return b.String()
}

// handleReadyz is 200 when every configured source is live within its lag
// threshold and none has stalled, else 503 with each source's reason. It
// says nothing of last_error: it is served without the token.
func (s *Server) handleReadyz(w http.ResponseWriter, r *http.Request) error {
	out := []readiness{}
	ready := true
	if _, err := s.st.Sources(r.Context()); err != nil {
		s.log.Error().Err(err).Msg("readiness check: store not readable")
		ready = false
		out = append(out, readiness{Name: "store", State: "unavailable", Reason: "database not readable"})
	}
	now := s.now()
	for _, st := range s.sources() {
		rd := readiness{Name: st.Name, State: string(st.State), Ready: true}
		var reasons []string
		switch {
		case st.State == store.StateStandby && st.Owner != "":
			// Another process ingests it and has not reported yet.
		case st.State == store.StateStandby:
			reasons = append(reasons, "no process holds its lease")
		case st.State != store.StateLive:
			reason := "not live: " + string(st.State)
			if st.State == store.StateBackfilling && st.Progress != nil && st.Progress.Total > 0 {
				reason += fmt.Sprintf(" (%d of %d)", st.Progress.Done, st.Progress.Total)
			}
			reasons = append(reasons, reason)
		case st.Lag > st.LagThreshold:
			reasons = append(reasons, fmt.Sprintf("lag %d exceeds threshold %d", st.Lag, st.LagThreshold))
		case len(st.Gaps) > 0:
			// The gaps' reasons name nodes and their errors: they stay
			// behind the token on /v1/sources.
			reasons = append(reasons, gapSummary(st.Name, st.Gaps))
		}
		if stall := stalled(&st, now); stall != "" {
			reasons = append(reasons, stall)
		}
		if len(reasons) > 0 {
			rd.Ready, rd.Reason = false, strings.Join(reasons, "; ")
		}
		ready = ready && rd.Ready
		out = append(out, rd)
	}
	replica := s.replicaReadiness(r.Context())
	if replica != nil {
		ready = ready && replica.Ready
	}
	body := struct {
		Status  string            `json:"status"`
		Sources []readiness       `json:"sources"`
		Replica *replicaReadiness `json:"replica,omitempty"`
	}{"ok", out, replica}
	if !ready {
		body.Status = "unavailable"
		writeJSON(w, http.StatusServiceUnavailable, body)
		return nil
	}
	writeJSON(w, http.StatusOK, body)
	return nil
}

// stalled says how long st has committed nothing while its upstream's
// head is ahead of its checkpoint, once that is longer than its stall
// threshold; "" otherwise. A source in standby is another process's to
// judge.
func stalled(st *store.SourceStatus, now time.Time) string {
	if st.StallThreshold <= 0 || st.StalledSince.IsZero() || st.State == store.StateStandby {
		return ""
	}
	d := now.Sub(st.StalledSince)
	if d <= st.StallThreshold {
		return ""
	}
	where := "before its first checkpoint"
	if cp := st.Checkpoint; cp != nil {
		where = fmt.Sprintf("%d past its checkpoint %d", st.HeadHeight-min(st.HeadHeight, cp.Height), cp.Height)
	}
	return fmt.Sprintf("stalled: source %s has committed nothing for %s (threshold %s) while its upstream's head %d is %s",
		st.Name, d.Round(time.Second), st.StallThreshold, st.HeadHeight, where)
}

// replicaReadiness is the replica part of /readyz.
type replicaReadiness struct {
	Ready               bool    `json:"ready"`
	ReplayLagSeconds    float64 `json:"replay_lag_seconds"`
	MaxReplayLagSeconds float64 `json:"max_replay_lag_seconds"`
	Reason              string  `json:"reason,omitempty"`
}

// replicaReadiness reports the replica's replay lag, or nil when the
// store reads no replica.
func (s *Server) replicaReadiness(ctx context.Context) *replicaReadiness {
	if s.replicaLag == nil {
		return nil
	}
	lag, ok, err := s.replicaLag(ctx)
	if !ok {
		return nil
	}
	rr := &replicaReadiness{Ready: true, ReplayLagSeconds: lag.Seconds(), MaxReplayLagSeconds: s.maxReplayLag.Seconds()}
	switch {
	case err != nil:
		s.log.Error().Err(err).Msg("readiness check: replica lag")
		rr.Ready, rr.Reason = false, "replica not readable"
	case s.maxReplayLag > 0 && lag > s.maxReplayLag:
		rr.Ready, rr.Reason = false, fmt.Sprintf("replay lag %s exceeds %s", lag.Round(time.Millisecond), s.maxReplayLag)
	}
	return rr
}
