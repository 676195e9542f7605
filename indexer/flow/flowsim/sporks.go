package flowsim

// Sporks is one chain served by several nodes, each for its own spork's
// heights (started with one seed and adjacent ranges): the truth of a
// height is what its spork's node serves. Its accessors answer as one
// node's do, over the union of the ranges.
type Sporks []*Sim

// Events returns the blocks of Sim.Events from every spork's node.
func (c Sporks) Events(from, to uint64, f Filter) ([]Block, error) {
	var out []Block
	for _, s := range c {
		bs, err := s.Events(from, to, f)
		if err != nil {
			return nil, err
		}
		out = append(out, bs...)
	}
	return out, nil
}

// Rewards returns the staking payments of every spork's node.
func (c Sporks) Rewards(from, to uint64) []Reward {
	var out []Reward
	for _, s := range c {
		out = append(out, s.Rewards(from, to)...)
	}
	return out
}

// EpochTotals returns the epoch payouts of every spork's node.
func (c Sporks) EpochTotals(from, to uint64) []EpochTotal {
	var out []EpochTotal
	for _, s := range c {
		out = append(out, s.EpochTotals(from, to)...)
	}
	return out
}

// RewardTotals sums Rewards(from, to) per node id.
func (c Sporks) RewardTotals(from, to uint64) map[string]RewardTotal {
	return rewardTotals(c.Rewards(from, to))
}
