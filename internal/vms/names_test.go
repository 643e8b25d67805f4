package vms

import "testing"

func TestDidYouMean(t *testing.T) {
	names := []string{"dev", "devbox", "scratch"}
	for typed, want := range map[string]string{
		"de":      "; did you mean dev or devbox?",
		"scrach":  "; did you mean scratch?",
		"unknown": ": fallback",
	} {
		if got := DidYouMean(typed, names, "fallback"); got != want {
			t.Errorf("DidYouMean(%q) = %q, want %q", typed, got, want)
		}
	}
}
