package httpsem

import "time"

// TimeFormat is IMF-fixdate, the form in which HTTP dates are sent (RFC 9110 section 5.6.7).
const TimeFormat = "Mon, 02 Jan 2006 15:04:05 GMT"

// AppendDate appends t as an IMF-fixdate in UTC.
func AppendDate(dst []byte, t time.Time) []byte {
	return t.UTC().AppendFormat(dst, TimeFormat)
}

var (
	dayNames     = [7]string{"Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun"}
	longDayNames = [7]string{"Monday", "Tuesday", "Wednesday", "Thursday", "Friday", "Saturday", "Sunday"}
	monthNames   = [12]string{"Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"}
)

// ParseDate parses an HTTP-date in any of the three forms RFC 9110 section 5.6.7 obliges a recipient
// to accept, and returns it as Unix seconds (HTTP dates have second granularity):
//
//	Sun, 06 Nov 1994 08:49:37 GMT    IMF-fixdate
//	Sunday, 06-Nov-94 08:49:37 GMT   obsolete RFC 850 form
//	Sun Nov  6 08:49:37 1994         ANSI C asctime() form
//
// Names are case-sensitive, as the RFC says. The RFC 850 form's two-digit year is read as 1969-2068
// (as net/http does), which is the RFC's "not more than 50 years in the future" rule until 2018+50.
// The weekday name must be a real one but need not agree with the date. OWS around the value is
// accepted; anything else is ok false.
func ParseDate[T Text](v T) (unix int64, ok bool) {
	v = trimOWS(v)
	var year, month, day, clock int
	switch {
	case len(v) == 29 && v[3] == ',': // IMF-fixdate
		if !oneOf(v[:3], dayNames[:]) || v[4] != ' ' || v[7] != ' ' || v[11] != ' ' || v[16] != ' ' ||
			string(v[25:]) != " GMT" {
			return 0, false
		}
		day, ok = num2(v[5], v[6])
		month = monthOf(v[8:11])
		year, ok2 := num4(v[12:16])
		clock, ok3 := hms(v[17:25])
		if !ok || !ok2 || !ok3 {
			return 0, false
		}
		return toUnix(year, month, day, clock)
	case len(v) == 24 && v[3] == ' ': // asctime
		if !oneOf(v[:3], dayNames[:]) || v[7] != ' ' || v[10] != ' ' || v[19] != ' ' {
			return 0, false
		}
		month = monthOf(v[4:7])
		if v[8] == ' ' {
			day, ok = num2('0', v[9])
		} else {
			day, ok = num2(v[8], v[9])
		}
		clock, ok2 := hms(v[11:19])
		year, ok3 := num4(v[20:24])
		if !ok || !ok2 || !ok3 {
			return 0, false
		}
		return toUnix(year, month, day, clock)
	}
	// RFC 850: day-name-l ", " DD-mon-YY SP hh:mm:ss " GMT".
	name, rest := cutByte(v, ',')
	if !oneOf(name, longDayNames[:]) || len(rest) != 23 || rest[0] != ' ' || rest[3] != '-' ||
		rest[7] != '-' || rest[10] != ' ' || string(rest[19:]) != " GMT" {
		return 0, false
	}
	day, ok = num2(rest[1], rest[2])
	month = monthOf(rest[4:7])
	yy, ok2 := num2(rest[8], rest[9])
	clock, ok3 := hms(rest[11:19])
	if !ok || !ok2 || !ok3 {
		return 0, false
	}
	year = 1900 + yy
	if yy < 69 {
		year = 2000 + yy
	}
	return toUnix(year, month, day, clock)
}

// toUnix checks the fields and converts them; month 0 means an unknown month name.
func toUnix(year, month, day, clock int) (int64, bool) {
	if month == 0 || day < 1 || day > 31 {
		return 0, false
	}
	t := time.Date(year, time.Month(month), day, 0, 0, 0, 0, time.UTC)
	if t.Day() != day { // 31 Apr, 29 Feb 2001
		return 0, false
	}
	return t.Unix() + int64(clock), true
}

// hms reads "hh:mm:ss" as seconds since midnight; a leap second (60) is accepted.
func hms[T Text](v T) (int, bool) {
	if len(v) != 8 || v[2] != ':' || v[5] != ':' {
		return 0, false
	}
	h, ok1 := num2(v[0], v[1])
	m, ok2 := num2(v[3], v[4])
	s, ok3 := num2(v[6], v[7])
	if !ok1 || !ok2 || !ok3 || h > 23 || m > 59 || s > 60 {
		return 0, false
	}
	return h*3600 + m*60 + s, true
}

func num2(a, b byte) (int, bool) {
	if a < '0' || a > '9' || b < '0' || b > '9' {
		return 0, false
	}
	return int(a-'0')*10 + int(b-'0'), true
}

func num4[T Text](v T) (int, bool) {
	hi, ok1 := num2(v[0], v[1])
	lo, ok2 := num2(v[2], v[3])
	return hi*100 + lo, ok1 && ok2
}

// monthOf is 1-12 for a month name, 0 for anything else.
func monthOf[T Text](v T) int {
	for i, m := range monthNames {
		if string(v) == m {
			return i + 1
		}
	}
	return 0
}

func oneOf[T Text](v T, names []string) bool {
	for _, n := range names {
		if string(v) == n {
			return true
		}
	}
	return false
}
