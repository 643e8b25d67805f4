// Package processpb is the Go code protoc generates from process.proto:
// the messages of E2B's envd process service (Start, Connect, List, input,
// signals, terminal size), which internal/envd serves over banger's agent.
// Regenerate with `make generate`; only this file is written by hand.
package processpb
