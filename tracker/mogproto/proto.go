// Package mogproto is the MogileFS tracker wire codec: request and reply lines, the argument
// encoding with every quirk of the Perl implementation, and ERR codes with their fixed messages.
//
// A request is one line, "<command> <args>\r\n"; a reply is one line, "OK <args>\r\n" or
// "ERR <code> <message>\r\n". Arguments are name=value pairs joined by '&' and form-encoded
// (AppendArgs, ParseArgs). The tracker decodes requests with ParseRequest and encodes replies with
// AppendOK and AppendErr; clients do the reverse with AppendRequest and ParseReply.
//
// The package holds no state; every function is safe for concurrent use. It imports only the
// standard library.
package mogproto

import (
	"errors"
	"strconv"
	"strings"
)

// ErrProtocol is wrapped by every error about a malformed line: a request line without a command,
// a reply that is neither OK nor ERR, a counted list with a missing item.
var ErrProtocol = errors.New("mogproto: malformed line")

type lineError struct {
	what, excerpt string
}

func (e *lineError) Error() string {
	return "mogproto: malformed line: " + e.what + ": " + strconv.Quote(e.excerpt)
}

func (e *lineError) Unwrap() error { return ErrProtocol }

func protocolError(what, line string) error {
	if len(line) > 80 {
		line = line[:80] + "..."
	}
	return &lineError{what, line}
}

// Error is an ERR reply: a code in wire spelling (ErrUnknownKey, ...) and its decoded message.
// Callers find it with errors.As, or compare codes with IsCode.
type Error struct {
	Code    string
	Message string
}

// NewError returns an Error for code with the tracker's fixed message for it (Message).
func NewError(code string) *Error { return &Error{Code: code, Message: Message(code)} }

// Error returns "ERR code message", with the message decoded.
func (e *Error) Error() string {
	msg := e.Message
	if msg == "" {
		msg = e.Code
	}
	return "ERR " + e.Code + " " + msg
}

// Is reports whether target is an *Error with the same Code, so that
// errors.Is(err, mogproto.NewError(mogproto.ErrUnknownKey)) works; messages are not compared.
func (e *Error) Is(target error) bool {
	t, ok := target.(*Error)
	return ok && t.Code == e.Code
}

// IsCode reports whether err is or wraps an *Error with the given code.
func IsCode(err error, code string) bool {
	var e *Error
	return errors.As(err, &e) && e.Code == code
}

// Request is a decoded request line.
type Request struct {
	// Cmd is the command, lower-cased.
	Cmd string
	// Args are the decoded arguments, in the order they were sent.
	Args Args
}

func isWord(c byte) bool {
	return 'a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || '0' <= c && c <= '9' || c == '_'
}

func isSpace(c byte) bool {
	return c == ' ' || c == '\t' || c == '\r' || c == '\n' || c == '\f' || c == '\v'
}

func trimEOL(line []byte) []byte {
	if n := len(line); n > 0 && line[n-1] == '\n' {
		line = line[:n-1]
		if n := len(line); n > 0 && line[n-1] == '\r' {
			line = line[:n-1]
		}
	}
	return line
}

// ParseRequest decodes a request line as the tracker does: the command is the leading run of word
// characters ([A-Za-z0-9_]), lower-cased; after optional whitespace the rest of the line is the
// argument string, decoded by ParseArgs. A trailing LF or CRLF is ignored.
//
// Callers skip empty lines (they get no reply) and handle '!' admin lines before calling; for those,
// and for any line that does not start with a word character, ParseRequest returns an ErrProtocol.
func ParseRequest(line []byte) (Request, error) {
	s := string(line)
	r := Request{Args: make(Args, 0, strings.Count(s, "&")+1)}
	if err := r.Parse(s); err != nil {
		return Request{}, err
	}
	return r, nil
}

// Parse decodes line into r as ParseRequest does, reusing the storage of r.Args. A lower-case
// command and the arguments that need no decoding share line's memory, so a server that keeps r
// for its connection parses a typical request without allocating. On error r is left empty.
func (r *Request) Parse(line string) error {
	if n := len(line); n > 0 && line[n-1] == '\n' {
		line = line[:n-1]
		if n := len(line); n > 0 && line[n-1] == '\r' {
			line = line[:n-1]
		}
	}
	clear(r.Args) // entries past the new request's arguments would keep an older line alive
	r.Cmd, r.Args = "", r.Args[:0]
	i := 0
	for i < len(line) && isWord(line[i]) {
		i++
	}
	if i == 0 {
		return protocolError("no command", line)
	}
	r.Cmd = strings.ToLower(line[:i]) // no copy when it is lower case already
	for i < len(line) && isSpace(line[i]) {
		i++
	}
	r.Args = appendArgs(r.Args, line[i:])
	return nil
}

// AppendRequest appends "cmd args\r\n" to dst, encoding args with AppendArgs. With no args the line
// is "cmd \r\n", as the Perl client sends it.
func AppendRequest(dst []byte, cmd string, a Args) []byte {
	dst = append(dst, cmd...)
	dst = append(dst, ' ')
	dst = AppendArgs(dst, a)
	return append(dst, '\r', '\n')
}

// AppendOK appends a success reply: "OK " + args + "\r\n". The space is always there; nginx
// requires it even when there are no arguments.
func AppendOK(dst []byte, a Args) []byte {
	dst = append(dst, "OK "...)
	dst = AppendArgs(dst, a)
	return append(dst, '\r', '\n')
}

// AppendErr appends an error reply: "ERR code message\r\n" with the message escaped (Message(code)
// when e.Message is empty). A non-empty callid is appended after the message, escaped, as the
// tracker echoes a request's callid.
func AppendErr(dst []byte, e *Error, callid string) []byte {
	dst = append(dst, "ERR "...)
	dst = append(dst, e.Code...)
	dst = append(dst, ' ')
	msg := e.Message
	if msg == "" {
		msg = Message(e.Code)
	}
	dst = AppendEscape(dst, msg)
	if callid != "" {
		dst = append(dst, ' ')
		dst = AppendEscape(dst, callid)
	}
	return append(dst, '\r', '\n')
}

// ParseReply decodes a reply line (with or without its CRLF) as the Perl client does.
//
// "OK" followed by whitespace or the end of the line is a success: its arguments are the next
// whitespace-free token, decoded by ParseArgs rules, and anything after that token is ignored. A
// historical length field of digits before the token is skipped when whitespace follows it.
//
// "ERR" is returned as an *Error (errors.As-able) with the code (word characters) and the decoded
// message; a callid after the message is ignored. Anything else is an ErrProtocol.
func ParseReply(line []byte) (Args, error) {
	line = trimEOL(line)
	switch {
	case hasWord(line, "OK"):
		rest := skipSpace(line[2:])
		if j := digitsThenSpace(rest); j > 0 {
			rest = skipSpace(rest[j:])
		}
		return parseArgs(string(token(rest))), nil
	case hasWord(line, "ERR"):
		rest := skipSpace(line[3:])
		i := 0
		for i < len(rest) && isWord(rest[i]) {
			i++
		}
		if i == 0 {
			return nil, protocolError("ERR without a code", string(line))
		}
		code := string(rest[:i])
		msg := Unescape(string(token(skipSpace(rest[i:]))))
		return nil, &Error{Code: code, Message: msg}
	}
	return nil, protocolError("reply is neither OK nor ERR", string(line))
}

// hasWord reports whether line starts with w followed by whitespace or the end of the line.
func hasWord(line []byte, w string) bool {
	return len(line) >= len(w) && string(line[:len(w)]) == w && (len(line) == len(w) || isSpace(line[len(w)]))
}

func skipSpace(b []byte) []byte {
	for len(b) > 0 && isSpace(b[0]) {
		b = b[1:]
	}
	return b
}

func token(b []byte) []byte {
	for i, c := range b {
		if isSpace(c) {
			return b[:i]
		}
	}
	return b
}

// digitsThenSpace returns the length of a leading run of digits that is followed by whitespace, or 0.
func digitsThenSpace(b []byte) int {
	i := 0
	for i < len(b) && '0' <= b[i] && b[i] <= '9' {
		i++
	}
	if i > 0 && i < len(b) && isSpace(b[i]) {
		return i
	}
	return 0
}
