package spacemesh

import (
	"context"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"sort"
	"strconv"

	smv1 "github.com/spacemeshos/api/release/go/spacemesh/v1"
	smv2 "github.com/spacemeshos/api/release/go/spacemesh/v2alpha1"

	"github.com/evindex/evindex/store"
)

// maxPages bounds one paged v1 read; a node that never returns a short
// page is broken, and the run fails instead of looping.
const maxPages = 1 << 20

// nodeReward is one reward as either API reports it.
type nodeReward struct {
	layer       uint64
	smesher     string // hex; empty when the node does not say
	coinbase    string
	total       uint64
	layerReward uint64
}

// readRewards returns every reward of the tracked coinbases and smeshers in
// [from, to], once each: a reward's identity is (smesher, layer), so a
// coinbase shared by several smeshers and several rewards in one layer are
// all kept, and a reward found through both its coinbase and its smesher
// is stored once.
func (r *run) readRewards(ctx context.Context, from, to uint64) ([]store.Reward, error) {
	if to <= uint64(r.net.effectiveGenesis) {
		return nil, nil // no rewards before the effective genesis
	}
	var found []nodeReward
	if r.v1 {
		for _, cb := range r.cfg.Coinbases {
			rs, err := r.v1CoinbaseRewards(ctx, cb, from, to)
			if err != nil {
				return nil, err
			}
			found = append(found, rs...)
		}
	} else {
		for _, cb := range r.cfg.Coinbases {
			rs, err := r.v2Rewards(ctx, from, to, &smv2.RewardRequest_Coinbase{Coinbase: cb}, cb)
			if err != nil {
				return nil, err
			}
			found = append(found, rs...)
		}
		for i, id := range r.s.smeshers {
			rs, err := r.v2Rewards(ctx, from, to, &smv2.RewardRequest_Smesher{Smesher: id}, r.cfg.Smeshers[i])
			if err != nil {
				return nil, err
			}
			found = append(found, rs...)
		}
	}
	return r.records(found, from, to), nil
}

// v2Rewards pages RewardService.List over the fixed range [from, to].
// go-spacemesh: a zero start or end layer means unbounded, and the limit
// must be 1..100.
//
// A node whose pages never end (every page full, the same rewards again)
// is not followed forever: paging stops at the first page that brings
// nothing new, or past maxRewardsPerLayer rewards per layer of the range,
// and a rejected record says so; what was read is kept.
func (r *run) v2Rewards(ctx context.Context, from, to uint64, filter any, what string) ([]nodeReward, error) {
	var out []nodeReward
	seen := map[string]bool{}
	bound := (to - from + 1) * maxRewardsPerLayer
	for off := uint64(0); ; {
		req := &smv2.RewardRequest{
			StartLayer: uint32(from), EndLayer: uint32(to),
			Offset: off, Limit: r.cfg.PageLimit, SortOrder: smv2.SortOrder_ASC,
		}
		switch f := filter.(type) {
		case *smv2.RewardRequest_Coinbase:
			req.FilterBy = f
		case *smv2.RewardRequest_Smesher:
			req.FilterBy = f
		}
		cctx, cancel := r.call(ctx)
		res, err := r.reward.List(cctx, req)
		cancel()
		if err != nil {
			return nil, fmt.Errorf("rewards of %s in layers %d..%d: %w", what, from, to, err)
		}
		fresh := 0
		for _, rw := range res.GetRewards() {
			nr := nodeReward{
				layer: uint64(rw.GetLayer()), smesher: hex.EncodeToString(rw.GetSmesher()),
				coinbase: normalizeAddress(rw.GetCoinbase()), total: rw.GetTotal(), layerReward: rw.GetLayerReward(),
			}
			id := nr.smesher + "/" + strconv.FormatUint(nr.layer, 10)
			if seen[id] {
				continue
			}
			seen[id], fresh = true, fresh+1
			if r.acceptCoinbase(nr, rw.GetCoinbase()) {
				out = append(out, nr)
			}
		}
		n := uint64(len(res.GetRewards()))
		if n < r.cfg.PageLimit {
			return out, nil
		}
		off += n
		if fresh == 0 || off > bound {
			r.rejected = append(r.rejected, store.NewRejected(store.RecordReward, from, "reward list of "+what, "offset",
				fmt.Sprintf("the node's reward list for layers %d..%d did not end: paging stopped at offset %d (a page without new rewards or more than %d per layer)", from, to, off, maxRewardsPerLayer), nil))
			return out, nil
		}
	}
}

// acceptCoinbase reports whether a reward's coinbase is an address of the
// node's network, and quarantines the reward when it is not.
func (r *run) acceptCoinbase(nr nodeReward, sent string) bool {
	hrp, err := parseAddress(sent)
	if err == nil && hrp != r.net.hrp {
		err = fmt.Errorf("network prefix %q, not %q", hrp, r.net.hrp)
	}
	if err == nil {
		return true
	}
	r.rejected = append(r.rejected, store.NewRejected(store.RecordReward, nr.layer, "reward "+nr.smesher+"/"+strconv.FormatUint(nr.layer, 10),
		"coinbase", "not an address of this network: "+err.Error(), []byte(sent)))
	return false
}

// v1Hint remembers that count rewards of a coinbase lie below layer, so
// the next read can skip them: v1 AccountDataQuery always pages from
// genesis.
type v1Hint struct {
	layer uint64
	count uint32
}

// v1CoinbaseRewards pages GlobalStateService.AccountDataQuery (REWARD) for
// the rewards of cb in [from, to]. A read that saw the total change, or a
// stale hint, is repeated from genesis.
func (r *run) v1CoinbaseRewards(ctx context.Context, cb string, from, to uint64) ([]nodeReward, error) {
	for attempt := 0; attempt < 3; attempt++ {
		hint, ok := r.hints[cb]
		if !ok || r.unsortedV1 || hint.layer > from || hint.count == 0 {
			hint = v1Hint{}
		}
		out, consistent, err := r.v1Read(ctx, cb, from, to, hint)
		if err != nil {
			return nil, err
		}
		if consistent {
			return out, nil
		}
		delete(r.hints, cb)
	}
	return nil, fmt.Errorf("rewards of %s: the node's reward list kept changing while paging", cb)
}

func (r *run) v1Read(ctx context.Context, cb string, from, to uint64, hint v1Hint) (out []nodeReward, consistent bool, err error) {
	// With a hint, start one before it: that reward must lie below the
	// hint's layer and the next one at or above it, or the hint is stale.
	off := uint32(0)
	if hint.count > 0 {
		off = hint.count - 1
	}
	var (
		total     uint32
		prevLayer uint64
		firstFrom = -1 // absolute position of the first reward at or above from
		pos       = off
	)
	for page := 0; page < maxPages; page++ {
		cctx, cancel := r.call(ctx)
		res, err := r.global.AccountDataQuery(cctx, &smv1.AccountDataQueryRequest{
			Filter: &smv1.AccountDataFilter{
				AccountId:        &smv1.AccountId{Address: cb},
				AccountDataFlags: uint32(smv1.AccountDataFlag_ACCOUNT_DATA_FLAG_REWARD),
			},
			MaxResults: uint32(r.cfg.PageLimit),
			Offset:     off,
		})
		cancel()
		if err != nil {
			return nil, false, fmt.Errorf("rewards of %s: %w", cb, err)
		}
		if page == 0 {
			total = res.GetTotalResults()
		} else if res.GetTotalResults() != total {
			return nil, false, nil
		}
		items := res.GetAccountItem()
		for _, it := range items {
			p := pos
			pos++
			rw := it.GetReward()
			if rw == nil {
				continue
			}
			layer := uint64(rw.GetLayer().GetNumber())
			if hint.count > 0 && p == hint.count-1 {
				if layer >= hint.layer {
					return nil, false, nil
				}
				continue
			}
			if hint.count > 0 && p == hint.count && layer < hint.layer {
				return nil, false, nil
			}
			if layer < prevLayer {
				// The node does not order by layer: hints and early stops
				// are unsafe, so read everything from genesis from now on.
				r.unsortedV1 = true
				if hint.count > 0 {
					return nil, false, nil
				}
			}
			prevLayer = layer
			if firstFrom < 0 && layer >= from {
				firstFrom = int(p)
			}
			if layer < from || layer > to {
				continue
			}
			cbAddr, sent := cb, cb
			if a := rw.GetCoinbase().GetAddress(); a != "" {
				cbAddr, sent = normalizeAddress(a), a
			}
			nr := nodeReward{
				layer: layer, smesher: hex.EncodeToString(rw.GetSmesher().GetId()), coinbase: cbAddr,
				total: rw.GetTotal().GetValue(), layerReward: rw.GetLayerReward().GetValue(),
			}
			if r.acceptCoinbase(nr, sent) {
				out = append(out, nr)
			}
		}
		off += uint32(len(items))
		if len(items) == 0 || off >= total || (!r.unsortedV1 && prevLayer > to) {
			break
		}
	}
	if hint.count > 0 && pos <= hint.count-1 {
		return nil, false, nil // fewer rewards than the hint counted: something was reverted
	}
	if firstFrom < 0 {
		firstFrom = int(pos)
	}
	if !r.unsortedV1 {
		r.hints[cb] = v1Hint{layer: from, count: uint32(firstFrom)}
	}
	return out, true, nil
}

// records turns node rewards into store records, one per (smesher, layer)
// and only inside [from, to] (a zero end layer is unbounded on the node).
func (r *run) records(found []nodeReward, from, to uint64) []store.Reward {
	type identity struct {
		smesher string
		layer   uint64
	}
	seen := map[identity]int{}
	var out []store.Reward
	unknown := map[identity]int{} // rewards without a smesher, per (coinbase, layer)
	for _, nr := range found {
		if nr.layer < from || nr.layer > to {
			continue
		}
		id := identity{nr.smesher, nr.layer}
		if nr.smesher == "" {
			// An old node may not say who earned it: number such rewards
			// within their coinbase and layer.
			k := identity{nr.coinbase, nr.layer}
			unknown[k]++
			id = identity{"coinbase:" + nr.coinbase + "#" + strconv.Itoa(unknown[k]), nr.layer}
		}
		rec := r.record(nr, id.smesher)
		if i, ok := seen[id]; ok {
			out[i] = rec
			continue
		}
		seen[id] = len(out)
		out = append(out, rec)
	}
	sort.SliceStable(out, func(i, j int) bool {
		if out[i].Height != out[j].Height {
			return out[i].Height < out[j].Height
		}
		return out[i].ID < out[j].ID
	})
	return out
}

func (r *run) record(nr nodeReward, who string) store.Reward {
	fee := uint64(0)
	if nr.total > nr.layerReward {
		fee = nr.total - nr.layerReward
	}
	details, _ := json.Marshal(map[string]any{
		"smesher":      nr.smesher,
		"coinbase":     nr.coinbase,
		"layer":        nr.layer,
		"epoch":        nr.layer / uint64(r.net.layersPerEpoch),
		"layer_reward": strconv.FormatUint(nr.layerReward, 10),
		"fee":          strconv.FormatUint(fee, 10),
		"total":        strconv.FormatUint(nr.total, 10),
	})
	rec := store.Reward{
		Account:   nr.coinbase,
		Kind:      KindSmesherReward,
		ID:        who + "/" + strconv.FormatUint(nr.layer, 10),
		Height:    nr.layer,
		HasHeight: true,
		Time:      r.net.layerTime(nr.layer),
		RawAmount: strconv.FormatUint(nr.total, 10),
		Unit:      "SMH",
		Decimals:  9,
		Details:   details,
	}
	if nr.smesher != "" {
		rec.Aliases = []string{nr.smesher}
	}
	return rec
}
