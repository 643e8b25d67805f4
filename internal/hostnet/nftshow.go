package hostnet

import (
	"fmt"
	"slices"

	"github.com/google/nftables"
)

// listTable describes banger's tables (ip and bridge), their chains and
// rules.
func listTable() ([]Object, error) {
	out, err := listTableOf(table, "ip")
	if err != nil {
		return nil, err
	}
	more, err := listTableOf(bridgeTable, "bridge")
	return append(out, more...), err
}

func listTableOf(table *nftables.Table, family string) ([]Object, error) {
	c, err := nftables.New()
	if err != nil {
		return nil, err
	}
	if ok, err := findTableOf(c, table); err != nil || !ok {
		return nil, err
	}
	rules, chains, err := tableChainsOf(c, table)
	if err != nil {
		return nil, err
	}
	out := []Object{{Kind: "nft-table", Name: family + " " + TableName}}
	prefix := TableName // "banger forward"; "bridge banger forward"
	if family != "ip" {
		prefix = family + " " + TableName
	}
	names := make([]string, 0, len(chains))
	for n := range chains {
		names = append(names, n)
	}
	slices.Sort(names)
	for _, n := range names {
		ch := chains[n]
		detail := "regular chain (per-guest rules)"
		if n == fwdMarker {
			detail = "marker: banger turned net.ipv4.ip_forward on"
		}
		if ch.Hooknum != nil {
			detail = fmt.Sprintf("type %s hook %s priority %d", ch.Type, hookName(*ch.Hooknum), *ch.Priority)
		}
		out = append(out, Object{Kind: "nft-chain", Name: prefix + " " + n, Detail: detail})
		for _, r := range rules[n] {
			out = append(out, Object{Kind: "nft-rule", Name: fmt.Sprintf("%s %s handle %d", prefix, n, r.Handle), Detail: comment(r)})
		}
	}
	if _, ok := chains[fwdMarker]; ok {
		out = append(out, Object{Kind: "sysctl", Name: "net.ipv4.ip_forward", Detail: "1: turned on by banger (teardown turns it off again)"})
	}
	return out, nil
}

func hookName(h nftables.ChainHook) string {
	switch h {
	case *nftables.ChainHookPrerouting:
		return "prerouting"
	case *nftables.ChainHookPostrouting:
		return "postrouting"
	case *nftables.ChainHookOutput:
		return "output"
	case *nftables.ChainHookForward:
		return "forward"
	case *nftables.ChainHookInput:
		return "input"
	}
	return fmt.Sprint(uint32(h))
}
