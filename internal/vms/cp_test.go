package vms

import (
	"errors"
	"strings"
	"testing"

	agentclient "github.com/banger-dev/banger/internal/agent/client"
	"github.com/banger-dev/banger/internal/api"
	"github.com/banger-dev/banger/internal/store"
)

func isCode(err error, code string) bool {
	var ae *api.Error
	return errors.As(err, &ae) && ae.Code == code
}

func TestCopyOldAgentHint(t *testing.T) {
	vm := store.VM{Name: "dev"}
	for _, msg := range []string{`unknown op "copy_out"`, `copy_in: target "" must be an absolute path (below / for a fresh copy)`} {
		err := agentRefusal(vm, &agentclient.RequestError{Op: "x", Message: msg})
		if !isCode(err, api.CodeConflict) || !strings.Contains(err.Error(), "banger vm restart dev") {
			t.Errorf("%s: %v", msg, err)
		}
	}
	if err := agentRefusal(vm, &agentclient.RequestError{Op: "x", Message: "/x: no such file or directory in the guest"}); !isCode(err, api.CodeInvalid) {
		t.Errorf("ordinary refusal: %v", err)
	}
}
