package main

import (
	"bufio"
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"math"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/onflow/flow/protobuf/go/flow/entities"
	"github.com/onflow/flow/protobuf/go/flow/executiondata"
	"google.golang.org/protobuf/types/known/timestamppb"

	"github.com/evindex/evindex/indexer/flow/flowsim"
	"github.com/evindex/evindex/indexer/presearch/presim"
	"github.com/evindex/evindex/indexer/spacemesh/smsim"
	"github.com/evindex/evindex/store"
	"github.com/evindex/evindex/store/storetest"
)

var (
	hostileFor   = flag.Duration("hostile.duration", time.Minute, "how long each TestHostileNode upstream sends its mix of bad input (-short: 10s)")
	hostileFlood = flag.Int("hostile.flood", 100000, "how many bad RewardsPaid events the Flow node's flood block holds (the issue's block of 100,000, about 54 MB)")
)

// Bounds TestHostileNode holds the real binary to, whatever the node sends.
const (
	hostileMaxRSS = 256 << 20 // VmHWM of the evindex process
	hostileMaxLog = 2 << 20   // bytes of log for the whole run
)

// TestHostileNode runs the evindex binary against each kind of upstream
// gone bad: for -hostile.duration the node sends a mix of every case of
// the untrusted-upstream tests (heads and heights that lie, times no
// clock shows, records no store can hold, amounts no reader holds, floods
// of nodes, events and pages). evindex must stay under 256 MB of RSS and a
// bounded log, never move its checkpoint back or wrap it, store every good
// record exactly, quarantine and list every bad one, and leave a file
// `evindex check` passes.
func TestHostileNode(t *testing.T) {
	d := *hostileFor
	if testing.Short() {
		d = min(d, 10*time.Second)
	}
	bin := evindexBinary(t)
	t.Run("Flow", func(t *testing.T) { hostileFlow(t, bin, d) })
	t.Run("Spacemesh", func(t *testing.T) { hostileSpacemesh(t, bin, d) })
	t.Run("Presearch", func(t *testing.T) { hostilePresearch(t, bin, d) })
}

// hostileChild is one evindex run process and what the test saw of it.
type hostileChild struct {
	cmd      *exec.Cmd
	logs     *storetest.LogBuffer
	addr     string
	data     string
	done     chan error
	peakRSS  int64 // VmHWM just before the stop
	logBytes int
}

func startHostileChild(t *testing.T, bin, sourceYAML string) *hostileChild {
	t.Helper()
	dir := t.TempDir()
	c := &hostileChild{logs: &storetest.LogBuffer{}, data: filepath.Join(dir, "data"), done: make(chan error, 1)}
	cfg := fmt.Sprintf("data_dir: %s\nlog: {level: info, format: json}\nhttp: {listen: 127.0.0.1:0}\nsources:\n%s", c.data, sourceYAML)
	path := filepath.Join(dir, "evindex.yaml")
	if err := os.WriteFile(path, []byte(cfg), 0o600); err != nil {
		t.Fatal(err)
	}
	c.cmd = exec.Command(bin, "run", "--config", path)
	c.cmd.Stderr = c.logs
	c.cmd.Stdout = c.logs
	if err := c.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	go func() { c.done <- c.cmd.Wait() }()
	t.Cleanup(func() {
		if c.cmd.ProcessState == nil {
			_ = c.cmd.Process.Kill()
			<-c.done
		}
	})
	for range 1500 {
		if c.addr = logField(c.logs.String(), "evindex serving", "addr"); c.addr != "" {
			return c
		}
		select {
		case err := <-c.done:
			t.Fatalf("evindex run exited: %v\n%s", err, c.logs.String())
		case <-time.After(20 * time.Millisecond):
		}
	}
	t.Fatalf("evindex run did not start serving:\n%s", c.logs.String())
	return nil
}

// watch polls the source's checkpoint until stop is closed and fails the
// test if it ever goes back or past limit.
func (c *hostileChild) watch(t *testing.T, source string, limit uint64, stop <-chan struct{}) *sync.WaitGroup {
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		var last uint64
		for {
			select {
			case <-stop:
				return
			case <-time.After(100 * time.Millisecond):
			}
			var s struct {
				Checkpoint *struct{ Height uint64 } `json:"checkpoint"`
			}
			if err := c.getJSON("/v1/sources/"+source, &s); err != nil || s.Checkpoint == nil {
				continue
			}
			if h := s.Checkpoint.Height; h < last || h > limit {
				t.Errorf("checkpoint went from %d to %d (limit %d)", last, h, limit)
				return
			} else {
				last = h
			}
		}
	}()
	return &wg
}

func (c *hostileChild) getJSON(path string, v any) error {
	resp, err := http.Get("http://" + c.addr + path)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("GET %s: %s", path, resp.Status)
	}
	return json.NewDecoder(resp.Body).Decode(v)
}

// ndjson reads every row of a list endpoint.
func (c *hostileChild) ndjson(t *testing.T, path string) []map[string]any {
	t.Helper()
	resp, err := http.Get("http://" + c.addr + path + sepFor(path) + "format=ndjson")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("GET %s: %s", path, resp.Status)
	}
	var out []map[string]any
	sc := bufio.NewScanner(resp.Body)
	sc.Buffer(make([]byte, 4<<20), 4<<20)
	for sc.Scan() {
		var m map[string]any
		if err := json.Unmarshal(sc.Bytes(), &m); err != nil {
			t.Fatalf("%s: %v", path, err)
		}
		out = append(out, m)
	}
	if err := sc.Err(); err != nil {
		t.Fatal(err)
	}
	return out
}

func sepFor(path string) string {
	if strings.Contains(path, "?") {
		return "&"
	}
	return "?"
}

// stop reads the peak RSS, stops the process and checks the log size and
// the file.
func (c *hostileChild) stop(t *testing.T, bin string) {
	t.Helper()
	c.peakRSS = vmHWM(t, c.cmd.Process.Pid)
	_ = c.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case err := <-c.done:
		if err != nil {
			t.Fatalf("evindex run: %v", err)
		}
	case <-time.After(30 * time.Second):
		t.Fatal("evindex run did not stop on SIGTERM")
	}
	c.logBytes = len(c.logs.String())
	lines := strings.Count(c.logs.String(), "\n")
	t.Logf("peak RSS (VmHWM) %.1f MB, log %d bytes in %d lines", float64(c.peakRSS)/(1<<20), c.logBytes, lines)
	if c.peakRSS > hostileMaxRSS {
		t.Errorf("peak RSS %d MB, more than %d MB", c.peakRSS>>20, hostileMaxRSS>>20)
	}
	if c.logBytes > hostileMaxLog {
		t.Errorf("log of %d bytes, more than %d", c.logBytes, hostileMaxLog)
	}
	if out, err := exec.Command(bin, "check", "--data", c.data).CombinedOutput(); err != nil {
		t.Errorf("evindex check: %v\n%s", err, out)
	}
}

// vmHWM is a process's peak resident set in bytes.
func vmHWM(t *testing.T, pid int) int64 {
	t.Helper()
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		t.Fatal(err)
	}
	for _, line := range strings.Split(string(b), "\n") {
		if v, ok := strings.CutPrefix(line, "VmHWM:"); ok {
			kb, err := strconv.ParseInt(strings.TrimSpace(strings.TrimSuffix(strings.TrimSpace(v), "kB")), 10, 64)
			if err != nil {
				t.Fatal(err)
			}
			return kb << 10
		}
	}
	t.Fatal("no VmHWM in /proc status")
	return 0
}

// The Flow node's chain: every height has two good events; heights
// divisible by 7 add one poison event of each kind, by 11 an invalid
// block time; the 41st height holds a flood of -hostile.flood
// RewardsPaid events with 300-digit amounts (the events are stored, the
// rewards quarantined: a sample in full, the rest counted; the process
// must hold the block's transaction within the RSS bound); each fifth
// subscription first lies about its heights, and each third head answer
// claims 2^64-1.
const (
	flowRewards = "A." + flowsim.DefaultStakingContract + ".FlowIDTableStaking.RewardsPaid"
	goodType    = "A.0000000000000001.Token.Deposited"
)

func goodPayload(h uint64, i int) []byte {
	return []byte(fmt.Sprintf(`{"type":"Event","value":{"id":"%s","fields":[{"name":"n","value":{"type":"UInt64","value":"%d"}}]}}`, goodType, h*10+uint64(i)))
}

var flowPoison = []*entities.Event{
	{Type: "A.1.C.E\x00", Payload: []byte(`{}`)},
	{Type: "A.1.C." + strings.Repeat("E", 64<<10), Payload: []byte(`{}`)},
	{Type: "A.1.C.E", TransactionId: []byte(strings.Repeat("\xab", 20<<10)), Payload: []byte(`{}`)},
	{Type: "A.1.C.E", Payload: []byte("{\"a\":\"\xff\"}")},
	{Type: "A.1.C.E", Payload: []byte(strings.Repeat("[", 500) + strings.Repeat("]", 500))},
}

func badReward(h uint64, i int) *entities.Event {
	return &entities.Event{Type: flowRewards, TransactionIndex: 1, EventIndex: uint32(i), Payload: []byte(`{"type":"Event","value":{"id":"` + flowRewards +
		`","fields":[{"name":"nodeID","value":{"type":"String","value":"ab"}},{"name":"amount","value":{"type":"UFix64","value":"` + strings.Repeat("9", 300) + `.0"}}]}}`)}
}

func flowBlock(h uint64, floodAt uint64) *executiondata.SubscribeEventsResponse {
	resp := &executiondata.SubscribeEventsResponse{BlockId: []byte{byte(h >> 16), byte(h >> 8), byte(h)}, BlockHeight: h,
		BlockTimestamp: timestamppb.New(time.Date(2026, 6, 1, 0, 0, 0, 0, time.UTC).Add(time.Duration(h) * time.Second))}
	for i := range 2 {
		resp.Events = append(resp.Events, &entities.Event{Type: goodType, EventIndex: uint32(i), Payload: goodPayload(h, i)})
	}
	if h%7 == 0 {
		for i, p := range flowPoison {
			ev := *p
			ev.TransactionIndex, ev.EventIndex = 2, uint32(i)
			resp.Events = append(resp.Events, &ev)
		}
	}
	if h%11 == 0 {
		resp.BlockTimestamp = &timestamppb.Timestamp{Seconds: 253402214400} // 9999-12-31
	}
	if h == floodAt {
		for i := range *hostileFlood {
			resp.Events = append(resp.Events, badReward(h, i))
		}
	}
	return resp
}

// flowBad is how many rejected records height h must leave.
func flowBad(h, floodAt uint64) int {
	n := 0
	if h%7 == 0 {
		n += len(flowPoison)
	}
	if h%11 == 0 {
		n++
	}
	if h == floodAt {
		n += *hostileFlood
	}
	return n
}

func hostileFlow(t *testing.T, bin string, d time.Duration) {
	const start = uint64(1000)
	floodAt := start + 40
	began := time.Now()
	// The chain grows 200 heights a second; the node tells the truth
	// about it two times in three.
	head := func() uint64 { return start + uint64(time.Since(began)/(5*time.Millisecond)) }
	node, err := flowsim.StartHostile("127.0.0.1:0", &flowsim.HostileNode{
		Head: func(call int) uint64 {
			if call%3 == 2 {
				return math.MaxUint64
			}
			return head()
		},
		Serve: func(ctx context.Context, n int, from uint64, send func(*executiondata.SubscribeEventsResponse) error) error {
			idx := uint64(0)
			if n%5 == 4 { // a lie first: 2^64-1, then from 0
				if err := send(&executiondata.SubscribeEventsResponse{BlockHeight: math.MaxUint64}); err != nil {
					return err
				}
				idx++
			}
			for h := from; ; h++ {
				for h > head() {
					select {
					case <-ctx.Done():
						return ctx.Err()
					case <-time.After(5 * time.Millisecond):
					}
				}
				resp := flowBlock(h, floodAt)
				resp.MessageIndex = idx
				idx++
				if err := send(resp); err != nil {
					return err
				}
			}
		},
	})
	if err != nil {
		t.Fatal(err)
	}
	defer node.Close()
	c := startHostileChild(t, bin, fmt.Sprintf("  - {name: flow-bad, kind: flow, endpoint: %s, start_height: %d}\n", node.Addr(), start))
	stop := make(chan struct{})
	wg := c.watch(t, "flow-bad", 1<<40, stop)
	time.Sleep(d)
	var src struct {
		Checkpoint struct{ Height uint64 } `json:"checkpoint"`
		HeadHeight uint64                  `json:"head_height"`
		LastError  string                  `json:"last_error"`
	}
	// On a loaded machine the flood block may still be committing when
	// the mix ends: the test is about what it costs, not how fast it goes,
	// so it waits (a bounded while) for the checkpoint to pass it.
	for range 1200 {
		if err := c.getJSON("/v1/sources/flow-bad", &src); err == nil && src.Checkpoint.Height > floodAt {
			break
		}
		time.Sleep(100 * time.Millisecond)
	}
	close(stop)
	wg.Wait()
	if err := c.getJSON("/v1/sources/flow-bad", &src); err != nil {
		t.Fatalf("%v\n%s", err, c.logs.String())
	}
	cp := src.Checkpoint.Height
	if cp < floodAt || src.HeadHeight > head()+1000 {
		t.Fatalf("checkpoint %d (the flood is at %d), head %d, last error %q\n%s", cp, floodAt, src.HeadHeight, src.LastError, c.logs.String())
	}
	// Every good event of start..cp is stored exactly, nothing else is.
	events := c.ndjson(t, fmt.Sprintf("/v1/events?source=flow-bad&to_height=%d", cp))
	good := map[string]bool{}
	for _, e := range events {
		h := uint64(e["height"].(float64))
		p, _ := json.Marshal(e["payload"])
		switch {
		case e["type"] == goodType:
			good[fmt.Sprint(h, "/", e["event_index"])] = true
			var want any
			_ = json.Unmarshal(goodPayload(h, int(e["event_index"].(float64))), &want)
			if w, _ := json.Marshal(want); string(p) != string(w) {
				i := int(e["event_index"].(float64))
				t.Fatalf("height %d event %d: payload %s", h, i, p)
			}
		case e["type"] == flowRewards && h == floodAt:
		default:
			t.Fatalf("a bad event was stored: %.200v", e)
		}
	}
	if len(good) != int(cp-start+1)*2 {
		t.Fatalf("%d good events stored for heights %d..%d, want %d", len(good), start, cp, (cp-start+1)*2)
	}
	// Every bad record is counted: listed in full, or in the count of a
	// counting record of its height and reason once the sample is full.
	rejected := c.ndjson(t, fmt.Sprintf("/v1/rejected?source=flow-bad&to_height=%d", cp))
	want, listed, flood := 0, 0, 0
	for h := start; h <= cp; h++ {
		want += flowBad(h, floodAt)
	}
	for _, r := range rejected {
		n := int(r["count"].(float64))
		listed += n
		if uint64(r["height"].(float64)) != floodAt {
			if r["counted"] == true {
				t.Fatalf("a counting record outside the flood: %v", r)
			}
			continue
		}
		if r["counted"] == true {
			flood += n
			if r["key"] != fmt.Sprintf("reward tx 1 event %d", store.MaxRejectedSample) || r["last_key"] != fmt.Sprintf("reward tx 1 event %d", *hostileFlood-1) {
				t.Fatalf("the flood's counting record %v", r)
			}
		}
	}
	if listed != want {
		t.Fatalf("%d rejected records listed or counted for %d..%d, want %d", listed, start, cp, want)
	}
	if flood != *hostileFlood-store.MaxRejectedSample {
		t.Fatalf("%d of the flood's %d bad rewards counted, want all but the %d kept in full", flood, *hostileFlood, store.MaxRejectedSample)
	}
	var srcCount struct {
		Rejected int `json:"rejected"`
	}
	if err := c.getJSON("/v1/sources/flow-bad", &srcCount); err != nil || srcCount.Rejected < want {
		t.Fatalf("/v1/sources counts %d rejected (%v), at least %d are stored", srcCount.Rejected, err, want)
	}
	t.Logf("flow: checkpoint %d after %s, %d events, %d rejected in %d items", cp, d, len(events), listed, len(rejected))
	c.stop(t, bin)
}

func hostileSpacemesh(t *testing.T, bin string, d time.Duration) {
	sim, err := smsim.Start(context.Background(), "127.0.0.1:0", "127.0.0.1:0",
		smsim.Config{Seed: 7, Layers: 60, LayersPerEpoch: 10, LayerInterval: 100 * time.Millisecond, EventReplay: 5000})
	if err != nil {
		t.Fatal(err)
	}
	defer sim.Close()
	sim.SetHostile(smsim.Hostile{BadCoinbaseEvery: 3, EndlessPages: true, EventFlood: 1200})
	stopLies := make(chan struct{})
	var lies sync.WaitGroup
	lies.Add(1)
	go func() { // now and then the node claims verified layer 2^32-1
		defer lies.Done()
		for i := 0; ; i++ {
			select {
			case <-stopLies:
				return
			case <-time.After(700 * time.Millisecond):
			}
			h := smsim.Hostile{BadCoinbaseEvery: 3, EndlessPages: true, EventFlood: 1200}
			if i%2 == 0 {
				h.VerifiedLayer = 1<<32 - 1
			}
			sim.SetHostile(h)
		}
	}()
	c := startHostileChild(t, bin, fmt.Sprintf("  - name: sm-bad\n    kind: spacemesh\n    public_endpoint: %s\n    private_endpoint: %s\n    coinbases: [%s]\n",
		sim.PublicAddr(), sim.PrivateAddr(), strings.Join(sim.Coinbases(), ", ")))
	stop := make(chan struct{})
	wg := c.watch(t, "sm-bad", 1<<32-2, stop)
	time.Sleep(d)
	close(stopLies)
	lies.Wait()
	sim.SetHostile(smsim.Hostile{BadCoinbaseEvery: 3, EndlessPages: true})
	applied := sim.AppliedLayer()
	// Let it reach the node's last layer once the lies stop.
	for range 1500 {
		var s struct {
			Checkpoint *struct{ Height uint64 } `json:"checkpoint"`
		}
		if c.getJSON("/v1/sources/sm-bad", &s) == nil && s.Checkpoint != nil && s.Checkpoint.Height >= uint64(applied) {
			break
		}
		time.Sleep(20 * time.Millisecond)
	}
	close(stop)
	wg.Wait()
	var s struct {
		Checkpoint struct{ Height uint64 } `json:"checkpoint"`
	}
	if err := c.getJSON("/v1/sources/sm-bad", &s); err != nil {
		t.Fatal(err)
	}
	cp := uint32(s.Checkpoint.Height)
	if cp < applied {
		t.Fatalf("checkpoint %d, the node applied %d", cp, applied)
	}
	stored := c.ndjson(t, fmt.Sprintf("/v1/rewards?source=sm-bad&to_height=%d", cp))
	rejected := c.ndjson(t, fmt.Sprintf("/v1/rejected?source=sm-bad&to_height=%d", cp))
	bad := map[string]bool{}
	for _, r := range rejected {
		if r["field"] == "coinbase" {
			bad[r["key"].(string)] = true
		}
	}
	truth := map[string]uint64{}
	for _, r := range sim.Rewards(0, cp) {
		if contains(sim.Coinbases(), r.Coinbase) {
			truth[r.Smesher+"/"+strconv.FormatUint(uint64(r.Layer), 10)] = r.Total
		}
	}
	for _, r := range stored {
		det := r["details"].(map[string]any)
		id := det["smesher"].(string) + "/" + strconv.FormatFloat(r["height"].(float64), 'f', 0, 64)
		if want, ok := truth[id]; !ok || r["raw_amount"] != strconv.FormatUint(want, 10) || !contains(sim.Coinbases(), r["account"].(string)) {
			t.Fatalf("stored reward %v is not the node's (%d)", r, want)
		}
		delete(truth, id)
	}
	for id := range truth {
		if !bad["reward "+id] {
			t.Fatalf("reward %s neither stored nor quarantined", id)
		}
	}
	floods := 0
	for _, r := range rejected {
		if r["key"] == "admin events beyond the bound" {
			floods++
		}
	}
	if len(bad) == 0 || floods == 0 {
		t.Fatalf("%d bad coinbases and %d flooded layers quarantined: the run tested nothing", len(bad), floods)
	}
	t.Logf("spacemesh: checkpoint %d, %d rewards stored, %d quarantined, %d flooded layers", cp, len(stored), len(bad), floods)
	c.stop(t, bin)
}

func hostilePresearch(t *testing.T, bin string, d time.Duration) {
	sim, err := presim.Start(context.Background(), "127.0.0.1:0", presim.Config{Seed: 9, History: 48 * time.Hour})
	if err != nil {
		t.Fatal(err)
	}
	defer sim.Close()
	var flood strings.Builder
	for i := range 100000 { // 20 times MaxNodes (5000): an answer of 100,000 nodes
		fmt.Fprintf(&flood, `,"flood-%06d":{"meta":null,"status":{"connected":true}}`, i)
	}
	sim.TamperWith(func(stats bool, nodes []byte) []byte {
		extra := `"nul\u0000key":{"meta":null,"status":{"connected":true}}` + flood.String()
		if stats {
			extra = `"bad-1e400":{"meta":null,"status":null,"period":{"total_pre_earned":1e400}},` +
				`"bad-negative":{"meta":null,"status":null,"period":{"total_pre_earned":-5.0}},` +
				`"bad-tiny":{"meta":null,"status":null,"period":{"total_pre_earned":0.0000000000000000001}}`
		}
		if string(nodes) == "{}" {
			return []byte("{" + strings.TrimPrefix(extra, ",") + "}")
		}
		return []byte("{" + extra + "," + string(nodes[1:]))
	})
	c := startHostileChild(t, bin, fmt.Sprintf("  - {name: pre-bad, kind: presearch, base_url: %s, api_key: %s, status_interval: 15s, backfill_days: 1}\n", sim.URL, sim.APIKey()))
	stop := make(chan struct{})
	wg := c.watch(t, "pre-bad", uint64(time.Now().Add(time.Hour).Unix()), stop)
	time.Sleep(d)
	close(stop)
	wg.Wait()
	var s struct {
		Checkpoint struct {
			Height uint64
			Time   time.Time
		} `json:"checkpoint"`
		RewardsIndexed uint64 `json:"rewards_indexed"`
	}
	if err := c.getJSON("/v1/sources/pre-bad", &s); err != nil {
		t.Fatal(err)
	}
	rewards := c.ndjson(t, "/v1/rewards?source=pre-bad")
	rejected := c.ndjson(t, "/v1/rejected?source=pre-bad")
	windows := map[string]bool{}
	for _, r := range rewards {
		if strings.HasPrefix(r["account"].(string), "bad") || strings.HasPrefix(r["account"].(string), "flood") {
			t.Fatalf("a bad node's reward was stored: %v", r)
		}
		windows[r["period_end"].(string)] = true
	}
	perKey := map[string]int{}
	for _, r := range rejected {
		perKey[r["key"].(string)]++
	}
	for _, k := range []string{"node bad-1e400", "node bad-negative", "node bad-tiny"} {
		if perKey[k] != len(windows) {
			t.Fatalf("%s: %d rejected records for %d windows", k, perKey[k], len(windows))
		}
	}
	if perKey["nodes beyond the bound"] == 0 || perKey[`node nul\x00key`] == 0 {
		t.Fatalf("the flood or the NUL key is not quarantined: %v", perKey)
	}
	// Every good node's earnings of the stored windows are the node's.
	for _, r := range rewards {
		start, _ := time.Parse(time.RFC3339, r["period_start"].(string))
		end, _ := time.Parse(time.RFC3339, r["period_end"].(string))
		if want := sim.Earned(r["account"].(string), start, end); r["raw_amount"] != want.String() {
			t.Fatalf("reward %v, the node earned %s", r, want)
		}
	}
	for _, k := range sim.NodeKeys() {
		n := 0
		for _, r := range rewards {
			if r["account"] == k {
				n++
			}
		}
		if n != len(windows) {
			t.Fatalf("node %s: %d windows stored, want %d", k, n, len(windows))
		}
	}
	t.Logf("presearch: checkpoint %s, %d windows, %d rejected", s.Checkpoint.Time, len(windows), len(rejected))
	c.stop(t, bin)
}

func contains(list []string, s string) bool {
	for _, v := range list {
		if v == s {
			return true
		}
	}
	return false
}
