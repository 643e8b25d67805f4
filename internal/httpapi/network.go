package httpapi

import "github.com/banger-dev/banger/internal/api"

// e2bNetwork is the part of E2B's SandboxNetworkConfig (POST /sandboxes)
// and SandboxNetworkUpdateConfig (PUT /sandboxes/{id}/network) that
// banger's policy has a word for; its other fields (egress proxy, HTTP
// rewrite rules, public traffic) are accepted and ignored.
type e2bNetwork struct {
	AllowOut []string `json:"allowOut"`
	DenyOut  []string `json:"denyOut"`
	// AllowInternetAccess is the update's (PUT); a create sends it beside
	// network, as allow_internet_access.
	AllowInternetAccess *bool `json:"allow_internet_access"`
}

// mode is the policy mode internet access on (nat) or off (isolated)
// means; "" when allow is nil.
func mode(allow *bool) string {
	switch {
	case allow == nil:
		return ""
	case *allow:
		return api.NetNAT
	default:
		return api.NetIsolated
	}
}

// netPolicy maps E2B's network of a new sandbox onto banger's one model
// (api.NetPolicy): allowOut → AllowOut (allow wins, as in E2B), denyOut →
// DenyOut, allow_internet_access false → mode isolated, true → nat, absent
// → the configured default mode. Nil when the request sets neither rules
// nor internet access (an empty network object included): the VM gets
// [network]'s defaults whole. The rules are checked by the VM service,
// before anything is made.
func netPolicy(n *e2bNetwork, allowInternet *bool) *api.NetPolicy {
	if (n == nil || len(n.AllowOut)+len(n.DenyOut) == 0) && allowInternet == nil {
		return nil
	}
	p := &api.NetPolicy{Mode: mode(allowInternet)}
	if n != nil {
		p.AllowOut, p.DenyOut = n.AllowOut, n.DenyOut
	}
	return p
}

func orEmpty(s []string) []string {
	if s == nil {
		return []string{}
	}
	return s
}
