package api

// Host networking methods.
const (
	MethodNetworkShow     = "network.show"     // → NetworkState
	MethodNetworkTeardown = "network.teardown" // → NetworkTeardown
)

// NetworkObject is one thing banger added to the host's network.
type NetworkObject struct {
	// Kind is link, address, route, nft-table, nft-chain, nft-rule,
	// sysctl, resolved or dns.
	Kind   string `json:"kind"`
	Name   string `json:"name"`
	Detail string `json:"detail,omitempty"`
}

// NetworkState lists every host object banger created.
type NetworkState struct {
	Bridge  string          `json:"bridge"`
	Subnet  string          `json:"subnet"`
	Gateway string          `json:"gateway"`
	DNS     string          `json:"dns"` // where banger's DNS listens, "" when it does not
	Objects []NetworkObject `json:"objects"`
}

// NetworkTeardown is what a teardown removed, and what (if anything) it
// could not.
type NetworkTeardown struct {
	Removed []NetworkObject `json:"removed"`
	Left    []NetworkObject `json:"left"`
}
