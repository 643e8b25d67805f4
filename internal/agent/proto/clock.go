package proto

// Ops a host sends after a guest continues from a pause or a saved state.
// A guest that was stopped (paused, saved, restored from a snapshot) comes
// back with its wall clock where it stopped (under TCG the guest's time
// does not advance while its vCPUs are stopped), and a restored guest
// would otherwise continue from the snapshot's RNG state: two restores of
// one snapshot must not share random numbers.
const (
	OpSetTime = "settime"
	OpReseed  = "reseed"
)

// SetTimeParams sets the guest's wall clock (CLOCK_REALTIME).
type SetTimeParams struct {
	UnixNano int64 `json:"unix_nano"`
}

// ReseedParams carries host entropy that the agent adds to the guest
// kernel's pool (RNDADDENTROPY, credited) before it forces a reseed of
// the kernel's CRNG (RNDRESEEDCRNG), so every later random number depends
// on it.
type ReseedParams struct {
	Entropy []byte `json:"entropy"` // 32 to 512 bytes
}

// Reseed entropy bounds.
const (
	MinReseedBytes = 32
	MaxReseedBytes = 512
)
