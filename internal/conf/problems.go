package conf

import (
	"errors"
	"time"
)

// Problems collects what a Validate method finds, as *FieldError values, so that every check of a
// section reads as one line and Err returns them joined. The zero value is ready to use.
type Problems struct {
	errs []error
}

// Add records a problem with field: format and args say what is wrong, fix what to write instead
// (see Field).
func (p *Problems) Add(field, fix, format string, args ...any) {
	p.errs = append(p.errs, Field(field, fix, format, args...))
}

// AddErr records the problems in err, as a Validate method or Within returns them (joined or not;
// nil for none), one by one so that Within can later prefix each of them.
func (p *Problems) AddErr(err error) {
	if err != nil {
		p.errs = append(p.errs, unjoin(err)...)
	}
}

// NotNegative records "N is negative" for field when v < 0.
func (p *Problems) NotNegative(field string, v int, fix string) {
	if v < 0 {
		p.Add(field, fix, "%d is negative", v)
	}
}

// AtLeast records "D is too short" for field when v is below min.
func (p *Problems) AtLeast(field string, v Duration, min time.Duration, fix string) {
	if v.D() < min {
		p.Add(field, fix, "%s is too short", v)
	}
}

// Err returns the problems recorded, joined with errors.Join, or nil when there are none.
func (p *Problems) Err() error { return errors.Join(p.errs...) }
