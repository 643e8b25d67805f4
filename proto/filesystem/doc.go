// Package filesystempb is the Go code protoc generates from
// filesystem.proto: the messages of E2B's envd filesystem service (stat,
// make, move, list, remove, watch), which internal/envd serves over
// banger's agent. Regenerate with `make generate`; only this file is
// written by hand.
package filesystempb
