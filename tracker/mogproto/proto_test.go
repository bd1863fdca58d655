package mogproto

import (
	"bytes"
	"errors"
	"reflect"
	"testing"
)

func TestParseRequest(t *testing.T) {
	tests := []struct {
		line string
		want Request
	}{
		{"noop", Request{"noop", Args{}}},
		{"NOOP\r\n", Request{"noop", Args{}}},                       // 8.1 #3
		{"noop\n", Request{"noop", Args{}}},                         // 8.1 #6
		{"frobnicate x=1", Request{"frobnicate", Args{{"x", "1"}}}}, // 8.1 #2
		{"noop callid=42", Request{"noop", Args{{"callid", "42"}}}},
		{"get_paths domain=d&key=nope&callid=7", Request{"get_paths", Args{{"domain", "d"}, {"key", "nope"}, {"callid", "7"}}}},
		{"list_keys domain=", Request{"list_keys", Args{{"domain", ""}}}},
		{"get_paths key=x", Request{"get_paths", Args{{"key", "x"}}}},
		{"file_info domain=d&key=x=y", Request{"file_info", Args{{"domain", "d"}, {"key", "x"}}}}, // 8.1 #10
		{"file_info domain=d&key=x%3Dy", Request{"file_info", Args{{"domain", "d"}, {"key", "x=y"}}}},
		{"create_open domain=d&key=a+b%2Bc", Request{"create_open", Args{{"domain", "d"}, {"key", "a b+c"}}}}, // 8.1 #9
		{"Create_Open \t domain=d", Request{"create_open", Args{{"domain", "d"}}}},
		{"noop!", Request{"noop", Args{{"!", ""}}}},
	}
	for _, tt := range tests {
		got, err := ParseRequest([]byte(tt.line))
		if err != nil {
			t.Errorf("ParseRequest(%q) error %v", tt.line, err)
			continue
		}
		if !reflect.DeepEqual(got, tt.want) {
			t.Errorf("ParseRequest(%q) = %q, want %q", tt.line, got, tt.want)
		}
	}
	for _, bad := range []string{"", "\r\n", "!version", " noop", "&x=1"} {
		if _, err := ParseRequest([]byte(bad)); !errors.Is(err, ErrProtocol) {
			t.Errorf("ParseRequest(%q) error = %v, want ErrProtocol", bad, err)
		}
	}
}

func TestAppendRequest(t *testing.T) {
	tests := []struct {
		cmd  string
		args Args
		want string
	}{
		{"noop", nil, "noop \r\n"},
		{"create_open", Args{{"domain", "photos"}, {"key", "a/b.jpg"}, {"class", ""}, {"fid", "0"}, {"multi_dest", "1"}},
			"create_open domain=photos&key=a/b.jpg&class=&fid=0&multi_dest=1\r\n"},
		{"get_paths", Args{{"domain", "d"}, {"key", "é+"}}, "get_paths domain=d&key=%C3%A9%2B\r\n"},
	}
	for _, tt := range tests {
		if got := string(AppendRequest(nil, tt.cmd, tt.args)); got != tt.want {
			t.Errorf("AppendRequest(%q, %q) = %q, want %q", tt.cmd, tt.args, got, tt.want)
		}
	}
}

func TestAppendOK(t *testing.T) {
	tests := []struct {
		args Args
		want string
	}{
		{nil, "OK \r\n"}, // 8.1 #1: 4F 4B 20 0D 0A
		{Args{{"callid", "42"}}, "OK callid=42\r\n"},
		{Args{{"fid", "17"}, {"domain", "photos"}, {"class", "default"}, {"key", "a/b.jpg"}, {"length", "5"}, {"devcount", "2"}},
			"OK fid=17&domain=photos&class=default&key=a/b.jpg&length=5&devcount=2\r\n"},
		{Args{{"key_count", "1"}, {"key_1", "a b+c"}, {"next_after", "a b+c"}}, "OK key_count=1&key_1=a+b%2Bc&next_after=a+b%2Bc\r\n"},
		{Args{{"key", "été"}}, "OK key=%C3%A9t%C3%A9\r\n"},                                 // 8.1 #11
		{Args{{"key", "/img/2024/a_b-c.d,e:f\\g"}}, "OK key=/img/2024/a_b-c.d,e:f\\g\r\n"}, // 8.1 #12
		{Args{{"host1_altip", ""}}, "OK host1_altip=\r\n"},
	}
	for _, tt := range tests {
		if got := string(AppendOK(nil, tt.args)); got != tt.want {
			t.Errorf("AppendOK(%q) = %q, want %q", tt.args, got, tt.want)
		}
	}
}

func TestAppendErr(t *testing.T) {
	tests := []struct {
		err    *Error
		callid string
		want   string
	}{
		{NewError(ErrUnknownCommand), "", "ERR unknown_command Unknown+server+command\r\n"},
		{NewError(ErrNoDomain), "", "ERR no_domain No+domain+provided\r\n"},
		{NewError(ErrUnregDomain), "", "ERR unreg_domain Domain+name+invalid/not+found\r\n"},
		{NewError(ErrNoKey), "", "ERR no_key no_key\r\n"},
		{NewError(ErrUnknownKey), "7", "ERR unknown_key unknown_key 7\r\n"},
		{NewError(ErrNoneMatch), "", "ERR none_match No+keys+match+that+pattern+and+after-value+%28if+any%29.\r\n"},
		{NewError(ErrAfterMismatch), "", "ERR after_mismatch Pattern+does+not+match+the+after-value%3F\r\n"},
		{NewError(ErrKeyExists), "", "ERR key_exists Target+key+name+already+exists%3B+can%27t+overwrite.\r\n"},
		{NewError(ErrDomainHasFiles), "", "ERR domain_has_files Domain+still+has+files,+unable+to+delete\r\n"},
		{NewError(ErrHostMismatch), "", "ERR host_mismatch The+device+specified+doesn%27t+belong+to+the+host+specified\r\n"},
		{NewError(ErrHostNotEmpty), "", "ERR host_not_empty Unable+to+delete+host%3B+it+contains+devices+still\r\n"},
		{NewError(ErrStateTooHigh), "", "ERR state_too_high Status+cannot+go+from+dead+to+alive%3B+must+use+down\r\n"},
		{NewError(ErrNoTempFile), "", "ERR no_temp_file No+tempfile+or+file+already+closed\r\n"},
		{NewError(ErrNoDevices), "", "ERR no_devices No+devices+found+to+store+file\r\n"},
		{NewError(ErrFailure), "", "ERR failure Operation+failed\r\n"},
		{NewError(ErrDomainHasClasses), "", "ERR domain_has_classes domain_has_classes\r\n"},
		{&Error{Code: ErrSizeMismatch, Message: "Expected: 5; actual: 3; path: http://10.0.0.1:7500/dev1/x.fid"}, "",
			"ERR size_mismatch Expected:+5%3B+actual:+3%3B+path:+http://10.0.0.1:7500/dev1/x.fid\r\n"},
		{&Error{Code: ErrExistingDevid}, "", "ERR existing_devid existing_devid\r\n"},
	}
	for _, tt := range tests {
		if got := string(AppendErr(nil, tt.err, tt.callid)); got != tt.want {
			t.Errorf("AppendErr(%q, %q) = %q, want %q", tt.err.Code, tt.callid, got, tt.want)
		}
	}
}

func TestParseReplyOK(t *testing.T) {
	tests := []struct {
		line string
		want Args
	}{
		{"OK \r\n", Args{}},
		{"OK", Args{}},
		{"OK\r\n", Args{}},
		{"OK paths=2&path1=http://10.0.0.1:7500/dev1/0/000/000/0000000017.fid&path2=http://10.0.0.2:7500/dev3/0/000/000/0000000017.fid\r\n",
			Args{{"paths", "2"}, {"path1", "http://10.0.0.1:7500/dev1/0/000/000/0000000017.fid"}, {"path2", "http://10.0.0.2:7500/dev3/0/000/000/0000000017.fid"}}},
		{"OK callid=42", Args{{"callid", "42"}}},
		{"OK key_count=1&key_1=a+b%2Bc&next_after=a+b%2Bc", Args{{"key_count", "1"}, {"key_1", "a b+c"}, {"next_after", "a b+c"}}},
		{"OK 12 fid=1", Args{{"fid", "1"}}},            // historical length field
		{"OK fid=1 trailing junk", Args{{"fid", "1"}}}, // only the first token counts
		{"OK 5=x", Args{{"5", "x"}}},                   // digits not followed by space are arguments
		{"OK \tdomain=d\n", Args{{"domain", "d"}}},
	}
	for _, tt := range tests {
		got, err := ParseReply([]byte(tt.line))
		if err != nil {
			t.Errorf("ParseReply(%q) error %v", tt.line, err)
			continue
		}
		if !reflect.DeepEqual(got, tt.want) {
			t.Errorf("ParseReply(%q) = %q, want %q", tt.line, got, tt.want)
		}
	}
}

func TestParseReplyErr(t *testing.T) {
	tests := []struct {
		line, code, msg string
	}{
		{"ERR unknown_key unknown_key 7\r\n", ErrUnknownKey, "unknown_key"},
		{"ERR none_match No+keys+match+that+pattern+and+after-value+%28if+any%29.", ErrNoneMatch, Message(ErrNoneMatch)},
		{"ERR key_exists Target+key+name+already+exists%3B+can%27t+overwrite.\r\n", ErrKeyExists, Message(ErrKeyExists)},
		{"ERR failure", ErrFailure, ""},
		{"ERR size_mismatch Expected:+5%3B+actual:+3", ErrSizeMismatch, "Expected: 5; actual: 3"},
	}
	for _, tt := range tests {
		_, err := ParseReply([]byte(tt.line))
		var e *Error
		if !errors.As(err, &e) {
			t.Errorf("ParseReply(%q) error = %v, want *Error", tt.line, err)
			continue
		}
		if e.Code != tt.code || e.Message != tt.msg {
			t.Errorf("ParseReply(%q) = %q %q, want %q %q", tt.line, e.Code, e.Message, tt.code, tt.msg)
		}
		if !errors.Is(err, NewError(tt.code)) || !IsCode(err, tt.code) {
			t.Errorf("ParseReply(%q): errors.Is/IsCode(%q) false", tt.line, tt.code)
		}
	}
	for _, bad := range []string{"", "OKAY", "ERR", "ERR  ", "HTTP/1.0 200 OK", "ok ", "ERROR: x"} {
		if _, err := ParseReply([]byte(bad)); !errors.Is(err, ErrProtocol) {
			t.Errorf("ParseReply(%q) error = %v, want ErrProtocol", bad, err)
		}
	}
}

func TestErrorText(t *testing.T) {
	if got, want := NewError(ErrUnknownKey).Error(), "ERR unknown_key unknown_key"; got != want {
		t.Errorf("Error() = %q, want %q", got, want)
	}
	if got, want := NewError("no_such_code").Message, "no_such_code"; got != want {
		t.Errorf("NewError(no_such_code).Message = %q, want %q", got, want)
	}
	if got, want := ErrProtocol.Error(), "mogproto: malformed line"; got != want {
		t.Errorf("ErrProtocol = %q, want %q", got, want)
	}
}

// TestReplyGrammar is spec 8.1 #16 for the encoder: whatever the values, an OK line has no raw
// space in its argument string, no empty segment, '=' in every pair and a CRLF ending.
func TestReplyGrammar(t *testing.T) {
	vals := []string{"", " ", "&", "=", "&&", "a b", "\r\n", "\x00", "é", "0"}
	for _, v := range vals {
		line := AppendOK(nil, Args{{"a", v}, {v, "b"}})
		if !bytes.HasSuffix(line, []byte("\r\n")) || !bytes.HasPrefix(line, []byte("OK ")) {
			t.Fatalf("AppendOK(%q) = %q: bad framing", v, line)
		}
		body := line[3 : len(line)-2]
		if bytes.ContainsAny(body, " \r\n") {
			t.Errorf("AppendOK(%q) = %q: raw whitespace", v, line)
		}
		for _, seg := range bytes.Split(body, []byte("&")) {
			if len(seg) == 0 || bytes.IndexByte(seg, '=') < 0 {
				t.Errorf("AppendOK(%q) = %q: segment %q", v, line, seg)
			}
		}
	}
}

func FuzzParseRequest(f *testing.F) {
	for _, s := range []string{"noop", "NOOP\r\n", "get_paths domain=d&key=k", "", "!version", "x\t\t a=b=c&&0"} {
		f.Add([]byte(s))
	}
	reused := Request{Cmd: "old", Args: Args{{"a", "1"}, {"b", "2"}}}
	f.Fuzz(func(t *testing.T, line []byte) {
		r, err := ParseRequest(line)
		// Parse into a Request that holds an earlier request decodes the same.
		perr := reused.Parse(string(line))
		if (err == nil) != (perr == nil) || err == nil && (reused.Cmd != r.Cmd || len(reused.Args) != len(r.Args) ||
			len(r.Args) > 0 && !reflect.DeepEqual(reused.Args, r.Args)) {
			t.Fatalf("Parse(%q) = %q, %v; ParseRequest = %q, %v", line, reused, perr, r, err)
		}
		if err != nil {
			return
		}
		if r.Cmd == "" {
			t.Fatalf("ParseRequest(%q) = empty command, nil error", line)
		}
		// A request built from the decoded form decodes to the same thing.
		if bytes.ContainsAny([]byte(r.Cmd), "&= \r\n") {
			t.Fatalf("ParseRequest(%q) command %q", line, r.Cmd)
		}
	})
}

func FuzzParseReply(f *testing.F) {
	for _, s := range []string{"OK ", "OK paths=1&path1=http://x/", "ERR unknown_key unknown_key 7", "ERR", "OK 12 a=b", "garbage"} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, line []byte) {
		args, err := ParseReply(line)
		if err != nil {
			var e *Error
			if !errors.As(err, &e) && !errors.Is(err, ErrProtocol) {
				t.Fatalf("ParseReply(%q) error %v is neither *Error nor ErrProtocol", line, err)
			}
			return
		}
		// Re-encoding an OK reply and parsing it again gives the same arguments.
		again, err := ParseReply(AppendOK(nil, args))
		if err != nil || !reflect.DeepEqual(again, args) {
			t.Fatalf("ParseReply(AppendOK(%q)) = %q, %v", args, again, err)
		}
	})
}

var getPathsReply = []byte("OK paths=2&path1=http://10.0.0.1:7500/dev1/0/000/000/0000000017.fid&path2=http://10.0.0.2:7500/dev3/0/000/000/0000000017.fid\r\n")

func BenchmarkParseReplyGetPaths(b *testing.B) {
	b.ReportAllocs()
	for b.Loop() {
		a, err := ParseReply(getPathsReply)
		if err != nil || len(a) != 3 {
			b.Fatal(a, err)
		}
	}
}

func BenchmarkAppendRequest(b *testing.B) {
	a := Args{{"domain", "photos"}, {"key", "albums/2024/beach.jpg"}, {"noverify", "1"}, {"pathcount", "2"}}
	buf := make([]byte, 0, 256)
	b.ReportAllocs()
	for b.Loop() {
		buf = AppendRequest(buf[:0], CmdGetPaths, a)
	}
}

func TestHotPathAllocs(t *testing.T) {
	if n := testing.AllocsPerRun(100, func() { _, _ = ParseReply(getPathsReply) }); n > 2 {
		t.Errorf("ParseReply(get_paths) allocs = %v, want <= 2", n)
	}
	a := Args{{"domain", "photos"}, {"key", "k"}}
	buf := make([]byte, 0, 128)
	if n := testing.AllocsPerRun(100, func() { buf = AppendRequest(buf[:0], CmdGetPaths, a) }); n != 0 {
		t.Errorf("AppendRequest allocs = %v, want 0", n)
	}
}

// TestRequestParse: Parse into one Request, request after request, decodes each line as
// ParseRequest does and leaves nothing of the one before; a get_paths line costs no allocation.
func TestRequestParse(t *testing.T) {
	var r Request
	for _, line := range []string{
		"get_paths domain=d&key=k&noverify=1&pathcount=3&callid=9",
		"NOOP\r\n",
		"create_open domain=d&key=a+b%2Bc",
		"file_info domain=d&key=x=y",
		"get_paths key=x",
	} {
		want, err := ParseRequest([]byte(line))
		if err != nil {
			t.Fatal(err)
		}
		if err := r.Parse(line); err != nil {
			t.Fatalf("Parse(%q): %v", line, err)
		}
		if r.Cmd != want.Cmd || len(r.Args) != len(want.Args) || len(want.Args) > 0 && !reflect.DeepEqual(r.Args, want.Args) {
			t.Errorf("Parse(%q) = %q, want %q", line, r, want)
		}
	}
	if err := r.Parse(" noop"); !errors.Is(err, ErrProtocol) || r.Cmd != "" || len(r.Args) != 0 {
		t.Errorf("Parse(\" noop\") = %q, %v; want empty, ErrProtocol", r, err)
	}
	const line = "get_paths domain=photos&key=albums/2024/beach.jpg&noverify=1&pathcount=2"
	if n := testing.AllocsPerRun(100, func() { _ = r.Parse(line) }); n != 0 {
		t.Errorf("Parse(get_paths) allocs = %v, want 0", n)
	}
}
