package daemon

import (
	"context"
	"strings"
	"testing"
)

// daemon.status reports the agent it puts into initramfs, so `banger
// version` can say which agent guests get.
func TestStatusReportsTheAgentVersion(t *testing.T) {
	h := newHarness(t)
	st, err := h.client.Status(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	// The test agent is built without -X: its version is the toolchain's record.
	if !strings.HasPrefix(st.AgentVersion, "dev") || !strings.Contains(st.AgentVersion, "go1.") || st.Version == "" {
		t.Fatalf("status: version %q, agent %q", st.Version, st.AgentVersion)
	}
}
