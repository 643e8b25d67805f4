package hostnet

import (
	"encoding/binary"
	"net/netip"

	"github.com/google/nftables/expr"
	"golang.org/x/sys/unix"
)

// Small builders of nftables expressions, so that a rule reads as the
// nft(8) line it stands for.

func be16(v int) []byte { return binary.BigEndian.AppendUint16(nil, uint16(v)) }

func maskOf(p netip.Prefix) []byte {
	m := make([]byte, 4)
	binary.BigEndian.PutUint32(m, ^uint32(0)<<(32-p.Bits()))
	return m
}

// ifname is an interface name as the kernel compares it: NUL-padded.
func ifname(n string) []byte {
	b := make([]byte, 16)
	copy(b, n)
	return b
}

var (
	accept = &expr.Verdict{Kind: expr.VerdictAccept}
	drop   = &expr.Verdict{Kind: expr.VerdictDrop}
)

func cmpEq(data []byte) *expr.Cmp { return &expr.Cmp{Op: expr.CmpOpEq, Register: 1, Data: data} }

func meta(key expr.MetaKey) *expr.Meta { return &expr.Meta{Key: key, Register: 1} }

// iif is `iifname NAME`; a name ending in * matches by prefix, as in nft.
func iif(name string) []expr.Any { return ifCmp(expr.MetaKeyIIFNAME, name) }

// oif is `oifname NAME`.
func oif(name string) []expr.Any { return ifCmp(expr.MetaKeyOIFNAME, name) }

func ifCmp(key expr.MetaKey, name string) []expr.Any {
	data := ifname(name)
	if n := len(name); n > 0 && name[n-1] == '*' {
		data = []byte(name[:n-1])
	}
	return []expr.Any{meta(key), cmpEq(data)}
}

// payload loads len bytes at off of a header into register 1.
func payload(base expr.PayloadBase, off, n uint32) *expr.Payload {
	return &expr.Payload{DestRegister: 1, Base: base, Offset: off, Len: n}
}

// ipIn is `ip saddr PREFIX` (src) or `ip daddr PREFIX`.
func ipIn(src bool, p netip.Prefix) []expr.Any {
	off := uint32(16)
	if src {
		off = 12
	}
	p = p.Masked()
	out := []expr.Any{payload(expr.PayloadBaseNetworkHeader, off, 4)}
	if p.Bits() < 32 {
		out = append(out, &expr.Bitwise{SourceRegister: 1, DestRegister: 1, Len: 4, Mask: maskOf(p), Xor: make([]byte, 4)})
	}
	return append(out, cmpEq(p.Addr().AsSlice()))
}

// l4 is `meta l4proto PROTO`.
func l4(proto byte) []expr.Any { return []expr.Any{meta(expr.MetaKeyL4PROTO), cmpEq([]byte{proto})} }

// dport is `PROTO dport PORT`.
func dport(proto byte, port uint16) []expr.Any {
	return append(l4(proto), payload(expr.PayloadBaseTransportHeader, 2, 2), cmpEq(be16(int(port))))
}

// etherType is `ether type T` in the bridge family.
func etherType(t uint16) []expr.Any {
	return []expr.Any{payload(expr.PayloadBaseLLHeader, 12, 2), cmpEq(be16(int(t)))}
}

// protos are the transport protocols a port rule covers.
var protos = []struct {
	name string
	num  byte
}{{"tcp", unix.IPPROTO_TCP}, {"udp", unix.IPPROTO_UDP}}

func join(parts ...[]expr.Any) []expr.Any {
	var out []expr.Any
	for _, p := range parts {
		out = append(out, p...)
	}
	return out
}
