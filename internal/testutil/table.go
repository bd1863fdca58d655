package testutil

import "testing"

// Table calls fn with each key of cases and reports (Errorf, naming fn as name) every result that
// is not the key's value. It is for pure functions whose input and result compare with ==; a case
// needing more than one check keeps its own loop.
func Table[In, Out comparable](t testing.TB, name string, fn func(In) Out, cases map[In]Out) {
	t.Helper()
	for in, want := range cases {
		if got := fn(in); got != want {
			t.Errorf("%s(%#v) = %#v, want %#v", name, in, got, want)
		}
	}
}
