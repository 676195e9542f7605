package spacemesh_test

import (
	"strings"
	"testing"

	"github.com/evindex/evindex/indexer/spacemesh"
	"github.com/evindex/evindex/indexer/spacemesh/internal/bech32"
)

func address(t *testing.T, hrp string, reserved byte) string {
	t.Helper()
	data := make([]byte, 24)
	data[0] = reserved
	for i := 4; i < 24; i++ {
		data[i] = byte(i * 11)
	}
	s, err := bech32.Encode(hrp, data)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

func TestValidate(t *testing.T) {
	good := address(t, "sm", 0)
	flipped := good[:len(good)-1] + map[bool]string{true: "q", false: "p"}[good[len(good)-1] != 'q']
	smesher := strings.Repeat("ab", 32)
	base := func() spacemesh.Config {
		return spacemesh.Config{Name: "sm-node", PublicEndpoint: "127.0.0.1:9092", Coinbases: []string{good}, Smeshers: []string{smesher}}
	}
	for _, tc := range []struct {
		name string
		edit func(*spacemesh.Config)
		want string // "" means valid
	}{
		{"Valid", func(*spacemesh.Config) {}, ""},
		{"ValidUppercaseAnd0x", func(c *spacemesh.Config) {
			c.Coinbases = []string{strings.ToUpper(good)}
			c.Smeshers = []string{"0x" + strings.ToUpper(smesher)}
		}, ""},
		{"ValidTestnet", func(c *spacemesh.Config) { c.Coinbases = []string{address(t, "stest", 0)} }, ""},
		{"ValidOtherNetworkWithHRP", func(c *spacemesh.Config) { c.HRP = "dev"; c.Coinbases = []string{address(t, "dev", 0)} }, ""},
		{"BadChecksum", func(c *spacemesh.Config) { c.Coinbases = []string{good, flipped} }, "coinbases[1]: invalid bech32 checksum"},
		{"UnknownHRP", func(c *spacemesh.Config) { c.Coinbases = []string{address(t, "bc", 0)} }, `coinbases[0]: prefix "bc" is not a Spacemesh network's`},
		{"WrongHRP", func(c *spacemesh.Config) { c.HRP = "sm"; c.Coinbases = []string{address(t, "stest", 0)} }, `coinbases[0]: prefix "stest" is not the network's "sm"`},
		{"MixedNetworks", func(c *spacemesh.Config) { c.Coinbases = []string{good, address(t, "stest", 0)} }, "coinbases[1]: prefix"},
		{"MixedCase", func(c *spacemesh.Config) { c.Coinbases = []string{"Sm" + good[2:]} }, "coinbases[0]: mixed upper and lower case"},
		{"NotBech32", func(c *spacemesh.Config) { c.Coinbases = []string{"0xabcd"} }, "coinbases[0]: missing separator"},
		{"ReservedBytes", func(c *spacemesh.Config) { c.Coinbases = []string{address(t, "sm", 1)} }, "coinbases[0]: not a Spacemesh address"},
		{"Empty", func(c *spacemesh.Config) { c.Coinbases = []string{""} }, "coinbases[0]: empty address"},
		{"BadSmesher", func(c *spacemesh.Config) { c.Smeshers = []string{"abcd"} }, "smeshers[0]:"},
		{"NoName", func(c *spacemesh.Config) { c.Name = "" }, "name: required"},
		{"BadName", func(c *spacemesh.Config) { c.Name = "SM Node" }, "name:"},
		{"NoEndpoint", func(c *spacemesh.Config) { c.PublicEndpoint = "" }, "public_endpoint: required"},
		{"SchemeEndpoint", func(c *spacemesh.Config) { c.PublicEndpoint = "http://x:1" }, "public_endpoint:"},
		{"BadPrivateEndpoint", func(c *spacemesh.Config) { c.PrivateEndpoint = "localhost" }, "private_endpoint:"},
		{"PageLimit", func(c *spacemesh.Config) { c.PageLimit = 101 }, "page_limit:"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c := base()
			tc.edit(&c)
			err := c.Validate()
			if tc.want == "" {
				if err != nil {
					t.Fatalf("Validate = %v", err)
				}
				if _, err := spacemesh.New(c); err != nil {
					t.Fatalf("New = %v", err)
				}
				return
			}
			if err == nil || !strings.HasPrefix(err.Error(), tc.want) {
				t.Fatalf("Validate = %v, want %q...", err, tc.want)
			}
			if _, err := spacemesh.New(c); err == nil {
				t.Fatal("New accepted an invalid config")
			}
		})
	}
}

func TestNewNormalizesWithoutTouchingTheCaller(t *testing.T) {
	cb := strings.ToUpper(address(t, "sm", 0))
	in := []string{cb}
	src, err := spacemesh.New(spacemesh.Config{Name: "a", PublicEndpoint: "h:1", Coinbases: in, Smeshers: []string{"0X" + strings.Repeat("AB", 32)}})
	if err != nil {
		t.Fatal(err)
	}
	if in[0] != cb {
		t.Fatal("New changed the caller's slice")
	}
	c := src.Config()
	if c.Coinbases[0] != strings.ToLower(cb) || c.Smeshers[0] != strings.Repeat("ab", 32) || c.NodeName != "a" || c.ReconcileLayers != 10 {
		t.Fatalf("effective config %+v", c)
	}
}
