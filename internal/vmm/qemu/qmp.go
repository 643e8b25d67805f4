package qemu

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"net"
	"time"
)

// qmpRun runs one QMP command with optional arguments. QMP is small
// enough that a dozen lines beat digitalocean/go-qemu, whose qmp package
// drags in go-libvirt.
func qmpRun(ctx context.Context, sock, command string, args any) (json.RawMessage, error) {
	var d net.Dialer
	conn, err := d.DialContext(ctx, "unix", sock)
	if err != nil {
		return nil, fmt.Errorf("qmp connect: %w", err)
	}
	defer conn.Close()
	if dl, ok := ctx.Deadline(); ok {
		conn.SetDeadline(dl)
	} else {
		conn.SetDeadline(time.Now().Add(5 * time.Second))
	}
	r := bufio.NewReader(conn)
	if _, err := r.ReadBytes('\n'); err != nil { // greeting
		return nil, fmt.Errorf("qmp greeting: %w", err)
	}
	type request struct {
		Execute   string `json:"execute"`
		Arguments any    `json:"arguments,omitempty"`
	}
	enc := json.NewEncoder(conn)
	for _, req := range []request{{Execute: "qmp_capabilities"}, {Execute: command, Arguments: args}} {
		cmd := req.Execute
		if err := enc.Encode(req); err != nil {
			return nil, err
		}
		for {
			line, err := r.ReadBytes('\n')
			if err != nil {
				return nil, fmt.Errorf("qmp %s: %w", cmd, err)
			}
			var m struct {
				Return json.RawMessage `json:"return"`
				Error  *struct {
					Desc string `json:"desc"`
				} `json:"error"`
			}
			if json.Unmarshal(line, &m) != nil {
				continue
			}
			if m.Error != nil {
				return nil, fmt.Errorf("qmp %s: %s", cmd, m.Error.Desc)
			}
			if m.Return != nil {
				if cmd == command {
					return m.Return, nil
				}
				break
			}
		}
	}
	return nil, nil
}
