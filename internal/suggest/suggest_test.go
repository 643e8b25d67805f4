package suggest

import (
	"reflect"
	"testing"
)

func TestClosest(t *testing.T) {
	names := []string{"dev", "devbox", "web", "ls", "list"}
	for _, tc := range []struct {
		typed string
		want  []string
	}{
		{"de", []string{"dev", "devbox"}}, // prefix wins over distance
		{"wbe", []string{"web"}},          // distance 2
		{"lst", []string{"ls", "list"}},   // both at distance 1
		{"zzzzzz", nil},                   // nothing near
		{"dve", []string{"dev"}},          // transposition costs 2, web is 3
	} {
		if got := Closest(tc.typed, names, nil); !reflect.DeepEqual(got, tc.want) {
			t.Errorf("Closest(%q) = %q, want %q", tc.typed, got, tc.want)
		}
	}
	alias := map[string]string{"ls": "ls", "list": "ls", "rm": "delete", "delete": "delete"}
	got := Closest("l", []string{"ls", "list", "rm", "delete"}, func(s string) string { return alias[s] })
	if !reflect.DeepEqual(got, []string{"ls"}) {
		t.Errorf("aliases: got %q, want [ls] once", got)
	}
}

func TestDistance(t *testing.T) {
	for _, tc := range []struct {
		a, b string
		d    int
	}{{"", "", 0}, {"a", "", 1}, {"kitten", "sitting", 3}, {"lst", "ls", 1}} {
		if got := Distance(tc.a, tc.b); got != tc.d {
			t.Errorf("Distance(%q, %q) = %d, want %d", tc.a, tc.b, got, tc.d)
		}
	}
}

func TestHint(t *testing.T) {
	names := []string{"dev", "devbox", "scratch"}
	for typed, want := range map[string]string{
		"de":      "; did you mean dev or devbox?",
		"scrach":  "; did you mean scratch?",
		"unknown": ": fallback",
	} {
		if got := Hint(typed, names, "fallback"); got != want {
			t.Errorf("Hint(%q) = %q, want %q", typed, got, want)
		}
	}
}
