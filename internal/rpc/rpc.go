// Package rpc is the transport between the CLI and the daemon: one
// request per unix-socket connection, newline-delimited JSON. A call is a
// Request line; the server answers with zero or more progress lines, then
// one result or error line. Streaming methods (exec) continue on the same
// connection with raw frames after the result line. A call may also
// carry a byte stream each way (body.go).
package rpc

import (
	"encoding/json"

	"github.com/banger-dev/banger/internal/api"
)

// message is one line from the server.
type message struct {
	Progress *api.Progress   `json:"progress,omitempty"`
	Result   json.RawMessage `json:"result,omitempty"`
	Error    *api.Error      `json:"error,omitempty"`
	// Chunk announces that many raw response-body bytes right after
	// this line (body.go).
	Chunk int `json:"chunk,omitempty"`
}

// maxLine bounds a JSON line (requests and responses are small).
const maxLine = 8 << 20
