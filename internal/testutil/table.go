package testutil

import (
	"errors"
	"testing"
)

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

// Parses calls parse with each key of cases and reports every error and every result that is not
// the key's value.
func Parses[In, Out comparable](t testing.TB, name string, parse func(In) (Out, error), cases map[In]Out) {
	t.Helper()
	for in, want := range cases {
		if got, err := parse(in); err != nil || got != want {
			t.Errorf("%s(%#v) = %#v, %v; want %#v", name, in, got, err, want)
		}
	}
}

// Rejects calls parse with each input and reports every one that it accepts or that yields a
// result other than the zero value.
func Rejects[In, Out comparable](t testing.TB, name string, parse func(In) (Out, error), inputs ...In) {
	t.Helper()
	var zero Out
	for _, in := range inputs {
		if got, err := parse(in); err == nil || got != zero {
			t.Errorf("%s(%#v) = %#v, %v; want an error", name, in, got, err)
		}
	}
}

// RejectsWith calls parse with each key of cases and reports every result other than the zero
// value and every error that is not (errors.Is) the key's value.
func RejectsWith[In, Out comparable](t testing.TB, name string, parse func(In) (Out, error), cases map[In]error) {
	t.Helper()
	var zero Out
	for in, want := range cases {
		if got, err := parse(in); !errors.Is(err, want) || got != zero {
			t.Errorf("%s(%#v) = %#v, %v; want %v", name, in, got, err, want)
		}
	}
}
