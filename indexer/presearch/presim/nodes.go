package presim

import (
	"crypto/sha256"
	"encoding/base64"
	"encoding/binary"
	"fmt"
	"math/big"
	"strings"
	"time"
)

// spkiP256Prefix is the DER header of an uncompressed P-256 public key in
// SubjectPublicKeyInfo form, so generated keys look like the base64 keys the
// node dashboard shows.
var spkiP256Prefix = []byte{
	0x30, 0x59, 0x30, 0x13, 0x06, 0x07, 0x2a, 0x86, 0x48, 0xce, 0x3d, 0x02, 0x01,
	0x06, 0x08, 0x2a, 0x86, 0x48, 0xce, 0x3d, 0x03, 0x01, 0x07, 0x03, 0x42, 0x00, 0x04,
}

// node is one simulated Presearch node. Everything it reports is a pure
// function of (seed, index, minute), so any window's truth can be recomputed.
type node struct {
	index     int
	key       string
	seed      uint64
	outagePct uint64 // chance (percent) that an hour holds an outage
	baseRaw   uint64 // smallest per-minute reward in 10^-18 PRE
	spreadRaw uint64 // per-minute reward varies in [baseRaw, baseRaw+spreadRaw)
	genesis   int64  // first unix minute the node exists
	meta      nodeMeta
}

type nodeMeta struct {
	Description       *string `json:"description"`
	URL               *string `json:"url"`
	ServerDescription *string `json:"server_description"`
	ServerURL         *string `json:"server_url"`
	GatewayPool       *string `json:"gateway_pool"`
	RemoteAddr        *string `json:"remote_addr"`
	Version           *string `json:"version"`
	IsProvisioned     *bool   `json:"is_provisioned"`
}

func strp(s string) *string { return &s }

func newNode(seed int64, index int, genesis time.Time) *node {
	n := &node{
		index:     index,
		seed:      uint64(seed)*0x9e3779b97f4a7c15 + uint64(index+1),
		outagePct: []uint64{8, 20, 35}[index%3],
		baseRaw:   []uint64{150_000_000_000_000, 90_000_000_000_000, 60_000_000_000_000}[index%3],
		spreadRaw: 50_000_000_000_000,
		genesis:   genesis.Unix() / 60,
	}
	n.key = nodeKey(seed, index)
	provisioned := true
	n.meta = nodeMeta{
		Description:       strp(fmt.Sprintf("demo-node-%d", index+1)),
		URL:               strp(fmt.Sprintf("https://node%d.example.org", index+1)),
		ServerDescription: strp(fmt.Sprintf("sim node %d", index+1)),
		ServerURL:         nil,
		GatewayPool:       strp("production"),
		RemoteAddr:        strp(fmt.Sprintf("192.0.2.%d", 10+index)),
		Version:           strp("1.2.31"),
		IsProvisioned:     &provisioned,
	}
	if index%3 == 2 {
		// One node never set a URL: the API reports it as null.
		n.meta.URL = nil
	}
	return n
}

// nodeKey derives a deterministic base64 public key. Keys that would contain
// a '/' are skipped so they can be pasted into URL paths unescaped; '+' is
// kept because it exercises query-string encoding.
func nodeKey(seed int64, index int) string {
	for attempt := uint64(0); ; attempt++ {
		var in [24]byte
		binary.BigEndian.PutUint64(in[0:], uint64(seed))
		binary.BigEndian.PutUint64(in[8:], uint64(index))
		binary.BigEndian.PutUint64(in[16:], attempt)
		a := sha256.Sum256(in[:])
		b := sha256.Sum256(a[:])
		raw := append(append(append([]byte{}, spkiP256Prefix...), a[:]...), b[:]...)
		k := base64.StdEncoding.EncodeToString(raw)
		if !strings.Contains(k, "/") {
			return k
		}
	}
}

// mix is splitmix64: a cheap, well-spread hash of (node, salt, x).
func (n *node) mix(salt, x uint64) uint64 {
	z := n.seed ^ salt*0xbf58476d1ce4e5b9 ^ x*0x94d049bb133111eb
	z += 0x9e3779b97f4a7c15
	z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9
	z = (z ^ (z >> 27)) * 0x94d049bb133111eb
	return z ^ (z >> 31)
}

const (
	saltOutage   = 1
	saltReward   = 2
	saltRequests = 3
	saltLatency  = 4
	saltScore    = 5
)

// outage returns the outage [from, to) in unix minutes that starts in the
// given unix hour, if any. Outages last 3..42 minutes, so at most the
// previous hour's outage spills into an hour.
func (n *node) outage(hour int64) (from, to int64, ok bool) {
	r := n.mix(saltOutage, uint64(hour))
	if r%100 >= n.outagePct {
		return 0, 0, false
	}
	from = hour*60 + int64((r>>8)%60)
	to = from + 3 + int64((r>>16)%40)
	return from, to, true
}

// connected reports whether the node is connected during unix minute m.
func (n *node) connected(m int64) bool {
	if m < n.genesis {
		return false
	}
	h := floorDiv(m, 60)
	for _, hh := range []int64{h, h - 1} {
		if from, to, ok := n.outage(hh); ok && m >= from && m < to {
			return false
		}
	}
	return true
}

// since returns the first minute of the state the node is in at minute m.
// The search is bounded; a state older than maxLookback reports its bound.
func (n *node) since(m int64) int64 {
	const maxLookback = 60 * 24 * 60
	state := n.connected(m)
	lower := m - maxLookback
	if lower < n.genesis {
		lower = n.genesis
	}
	for x := m - 1; x >= lower; x-- {
		if n.connected(x) != state {
			return x + 1
		}
	}
	return lower
}

// reward returns the PRE the node earns in unix minute m, in 10^-18 units.
func (n *node) reward(m int64) uint64 {
	if !n.connected(m) {
		return 0
	}
	return n.baseRaw + n.mix(saltReward, uint64(m))%n.spreadRaw
}

// requests returns (total, successful, rewardable) requests served in minute m.
func (n *node) requests(m int64) (total, ok, rewardable uint64) {
	if !n.connected(m) {
		return 0, 0, 0
	}
	r := n.mix(saltRequests, uint64(m))
	total = r % 6
	failed := (r >> 8) % 4
	if failed > total {
		failed = total
	}
	ok = total - failed
	rewardable = ok
	if (r>>16)%3 == 0 && rewardable > 0 {
		rewardable--
	}
	return total, ok, rewardable
}

// period is the aggregate the API reports for a stats window. Pointer
// fields are null when the API has nothing to average.
type period struct {
	PeriodStartDate          string       `json:"period_start_date"`
	PeriodEndDate            string       `json:"period_end_date"`
	PeriodSeconds            int64        `json:"period_seconds"`
	Connections              connections  `json:"connections"`
	Disconnections           disconnCount `json:"disconnections"`
	TotalUptimeSeconds       int64        `json:"total_uptime_seconds"`
	UptimePercentage         *float64     `json:"uptime_percentage"`
	AvgUptimeScore           *float64     `json:"avg_uptime_score"`
	AvgLatencyMs             *float64     `json:"avg_latency_ms"`
	AvgLatencyScore          *float64     `json:"avg_latency_score"`
	TotalRequests            uint64       `json:"total_requests"`
	SuccessfulRequests       uint64       `json:"successful_requests"`
	AvgSuccessRate           *float64     `json:"avg_success_rate"`
	AvgSuccessRateScore      *float64     `json:"avg_success_rate_score"`
	AvgReliabilityScore      *float64     `json:"avg_reliability_score"`
	AvgStakedCapacityPercent *float64     `json:"avg_staked_capacity_percent"`
	AvgUtilizationPercent    *float64     `json:"avg_utilization_percent"`
	TotalPreEarned           rawNumber    `json:"total_pre_earned"`
	RewardableRequests       uint64       `json:"rewardable_requests"`
}

type connections struct {
	NumConnections       int     `json:"num_connections"`
	MostRecentConnection *string `json:"most_recent_connection"`
}

type disconnCount struct {
	NumDisconnections       int     `json:"num_disconnections"`
	MostRecentDisconnection *string `json:"most_recent_disconnection"`
}

// rawNumber is JSON number text written verbatim, so amounts keep all 18
// decimals instead of passing through a float.
type rawNumber string

func (r rawNumber) MarshalJSON() ([]byte, error) { return []byte(r), nil }

func round2(v float64) *float64 {
	r := float64(int64(v*100+0.5)) / 100
	return &r
}

// earned sums the node's rewards over unix minutes [from, to).
func (n *node) earned(from, to int64) *big.Int {
	sum := new(big.Int)
	var acc uint64
	for m := from; m < to; m++ {
		acc += n.reward(m)
		// Per-minute rewards are below 2^48, so flushing every 2^15
		// minutes keeps the accumulator far from overflow.
		if (m-from)&0x7fff == 0x7fff {
			sum.Add(sum, new(big.Int).SetUint64(acc))
			acc = 0
		}
	}
	return sum.Add(sum, new(big.Int).SetUint64(acc))
}

// active reports whether the node was connected at any minute of [from, to).
func (n *node) active(from, to int64) bool {
	for m := from; m < to; m++ {
		if n.connected(m) {
			return true
		}
	}
	return false
}

// period computes the stats window [from, to) in unix minutes; minutes at
// or after upTo (the current minute) have no data yet.
func (n *node) period(from, to, upTo int64) period {
	p := period{
		PeriodStartDate: zulu(from),
		PeriodEndDate:   zulu(to),
		PeriodSeconds:   (to - from) * 60,
	}
	end := to
	if end > upTo {
		end = upTo
	}
	var up, reqs, okReqs, rewardable, latency, score uint64
	prev := n.connected(from - 1)
	for m := from; m < end; m++ {
		c := n.connected(m)
		if c != prev {
			t := zulu(m)
			if c {
				p.Connections.NumConnections++
				p.Connections.MostRecentConnection = &t
			} else {
				p.Disconnections.NumDisconnections++
				p.Disconnections.MostRecentDisconnection = &t
			}
		}
		prev = c
		if !c {
			continue
		}
		up++
		t, o, r := n.requests(m)
		reqs += t
		okReqs += o
		rewardable += r
		latency += t * (60 + n.mix(saltLatency, uint64(m))%140)
		score += 80 + n.mix(saltScore, uint64(m))%21
	}
	p.TotalUptimeSeconds = int64(up) * 60
	p.TotalRequests = reqs
	p.SuccessfulRequests = okReqs
	p.RewardableRequests = rewardable
	p.TotalPreEarned = rawNumber(formatPRE(n.earned(from, end)))
	if to > from {
		p.UptimePercentage = round2(float64(up) * 100 / float64(to-from))
	}
	if up > 0 {
		p.AvgUptimeScore = round2(float64(score) / float64(up))
		p.AvgReliabilityScore = round2(float64(score)/float64(up) - 3)
		p.AvgStakedCapacityPercent = round2(100)
		p.AvgUtilizationPercent = round2(float64(reqs) * 100 / float64(up*5))
	}
	if reqs > 0 {
		ms := float64(latency) / float64(reqs)
		p.AvgLatencyMs = round2(ms)
		p.AvgLatencyScore = round2(100 - ms/4)
		p.AvgSuccessRate = round2(float64(okReqs) * 100 / float64(reqs))
		p.AvgSuccessRateScore = round2(float64(okReqs) * 100 / float64(reqs))
	}
	return p
}

// formatPRE writes an amount in 10^-18 units as a decimal number of PRE
// without trailing zeros, e.g. 1500000000000000000 -> "1.5".
func formatPRE(raw *big.Int) string {
	s := raw.String()
	neg := strings.HasPrefix(s, "-")
	s = strings.TrimPrefix(s, "-")
	for len(s) <= 18 {
		s = "0" + s
	}
	whole, frac := s[:len(s)-18], strings.TrimRight(s[len(s)-18:], "0")
	out := whole
	if frac != "" {
		out += "." + frac
	}
	if neg {
		out = "-" + out
	}
	return out
}

func zulu(minute int64) string {
	return time.Unix(minute*60, 0).UTC().Format(time.RFC3339)
}

func floorDiv(a, b int64) int64 {
	q := a / b
	if (a%b != 0) && ((a < 0) != (b < 0)) {
		q--
	}
	return q
}
