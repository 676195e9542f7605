package spacemesh

import (
	"cmp"
	"encoding/hex"
	"slices"
	"time"

	smv1 "github.com/spacemeshos/api/release/go/spacemesh/v1"

	"github.com/evindex/evindex/store"
)

// Missed rewards are derived by the store from what the node announces on
// its admin event stream: Eligibilities (per identity and epoch, the
// layers it may propose in) and Proposal (it published one for a layer).
// Only tracked smeshers count, and only when rewards are read per smesher
// (v2alpha1): on a v1 node a smesher's rewards are found only through
// tracked coinbases, so a missing one would prove nothing.

// lastEventKey names the source state that holds the time of the newest
// admin event stored, so a reopened stream can tell whether its replay
// reaches back to it or events were lost in between.
const lastEventKey = "admin_last_event"

// announcements adds to b the eligibility or proposal that e announces
// for a tracked smesher.
func (r *run) announcements(e *smv1.Event, b *store.Batch) {
	if r.v1 || len(r.cfg.Smeshers) == 0 {
		return
	}
	ts := e.GetTimestamp().AsTime().UTC()
	switch d := e.GetDetails().(type) {
	case *smv1.Event_Eligibilities:
		el := d.Eligibilities
		id := hex.EncodeToString(el.GetSmesher())
		if !slices.Contains(r.cfg.Smeshers, id) {
			return
		}
		lpe := uint64(r.net.layersPerEpoch)
		epoch := uint64(el.GetEpoch())
		counts := map[uint64]uint32{}
		for _, pe := range el.GetEligibilities() {
			l := uint64(pe.GetLayer())
			// go-spacemesh: eligibilities are computed for the layers
			// of the event's epoch; anything else is not ours to claim.
			if l/lpe != epoch || pe.GetCount() == 0 {
				r.log.Warn().Uint64("layer", l).Uint64("epoch", epoch).Msg("eligibility outside its epoch skipped")
				continue
			}
			counts[l] += pe.GetCount()
		}
		rec := store.Eligibility{Account: id, Epoch: epoch, FinalAfter: r.cfg.ReconcileLayers, Time: ts}
		for l, c := range counts {
			rec.Heights = append(rec.Heights, store.EligibleHeight{Height: l, Count: c})
		}
		slices.SortFunc(rec.Heights, func(a, b store.EligibleHeight) int { return cmp.Compare(a.Height, b.Height) })
		b.Eligibilities = append(b.Eligibilities, rec)
	case *smv1.Event_Proposal:
		p := d.Proposal
		id := hex.EncodeToString(p.GetSmesher())
		if !slices.Contains(r.cfg.Smeshers, id) {
			return
		}
		b.Proposals = append(b.Proposals, store.Proposal{
			Account: id, Height: uint64(p.GetLayer()), ID: hex.EncodeToString(p.GetProposal()), Time: ts,
		})
	}
}

// noteEvent adds to b what a stored admin event at ts announces, the gap
// before it when it is the first of a fresh stream, and the newest event
// time for the next stream to compare with.
func (r *run) noteEvent(e *smv1.Event, ts time.Time, fresh *bool, b *store.Batch) {
	if *fresh {
		*fresh = false
		if g, ok := r.eventGap(r.lastEvent, ts); ok && len(r.cfg.Smeshers) > 0 {
			b.ProposalGaps = []store.Range{g}
		}
	}
	r.announcements(e, b)
	if ts.After(r.lastEvent) {
		r.lastEvent = ts
		b.State = map[string][]byte{lastEventKey: []byte(ts.Format(time.RFC3339Nano))}
	}
}

// eventGap is the range of layers whose announcements may be lost when a
// fresh stream's first event is at first and the newest stored one at
// last: go-spacemesh replays only its last ~100 events, so a replay that
// starts after last skipped what came in between. Nothing was lost when
// the replay reaches back to last.
func (r *run) eventGap(last, first time.Time) (store.Range, bool) {
	if !last.IsZero() && !first.After(last) {
		return store.Range{}, false
	}
	var from uint64
	if !last.IsZero() {
		from = r.net.layerAt(last)
	}
	// An event at the very start of a layer leaves that layer whole.
	to := r.net.layerAt(first.Add(-time.Nanosecond))
	if to < from || first.Add(-time.Nanosecond).Before(r.net.genesis) {
		return store.Range{}, false
	}
	return store.Range{From: from, To: to}, true
}
