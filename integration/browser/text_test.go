package browser

import "testing"

func TestVisibleText(t *testing.T) {
	tests := []struct {
		name string
		dom  string
		want string
	}{
		{"empty", "", ""},
		{"plain", "hello", "hello"},
		{"whitespace collapsed", "<p>  one \n\t two  </p>", "one two"},
		{"inline elements join", "<p>al<b>ph</b>a <i>beta</i></p>", "alpha beta"},
		{"entities decoded", "<p>a &amp; b &lt;c&gt; caf&eacute;</p>", "a & b <c> café"},
		{"no-break space is a space", "<p>a&nbsp;&nbsp;b</p>", "a b"},
		{"blocks are lines", "<h1>Title</h1><div>first</div><p>second</p>", "Title\nfirst\nsecond"},
		{"br breaks", "one<br>two<br/>three", "one\ntwo\nthree"},
		{"list items", "<ul><li>a</li><li> b </li></ul>", "a\nb"},
		{
			"table rows and cells",
			"<table><tr><th>Name</th><th>Role</th></tr><tr><td> regent-1 </td><td>leader</td></tr></table>",
			"Name\tRole\nregent-1\tleader",
		},
		{"empty cell keeps its column", "<table><tr><td>a</td><td></td><td>c</td></tr></table>", "a\t\tc"},
		{"empty row dropped", "<table><tr><td> </td><td></td></tr><tr><td>x</td></tr></table>", "x"},
		{
			"head, script, style left out",
			"<html><head><title>T</title><style>p{color:red}</style><script>var x = 1;</script></head>" +
				"<body><p>shown</p><script>document.write('no')</script><style>.a{}</style></body></html>",
			"shown",
		},
		{"noscript and template left out", "<noscript>enable JS</noscript><template><p>t</p></template><p>ok</p>", "ok"},
		{"hidden attribute", `<p>seen</p><div hidden><p>unseen</p></div>`, "seen"},
		{"comments left out", "<p>a<!-- secret -->b</p>", "ab"},
		{"attributes and alt left out", `<p title="tip"><img alt="logo" src="x.png">text</p>`, "text"},
		{"unclosed tags", "<p>one<p>two<div>three", "one\ntwo\nthree"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := VisibleText(tt.dom); got != tt.want {
				t.Errorf("VisibleText(%q)\n got %q\nwant %q", tt.dom, got, tt.want)
			}
		})
	}
}

func TestCheckURL(t *testing.T) {
	tests := []struct {
		url string
		ok  bool
	}{
		{"http://127.0.0.1:8080/status", true},
		{"http://127.0.0.2/", true},
		{"https://localhost:8443/", true},
		{"http://LOCALHOST/", true},
		{"http://[::1]:8080/", true},
		{"file:///tmp/page.html", true},
		{"data:text/html,<p>hi</p>", true},
		{"about:blank", true},
		{"http://example.com/", false},
		{"http://10.0.0.1/", false},
		{"http://[2001:db8::1]/", false},
		{"http://localhost.example.com/", false},
		{"ftp://127.0.0.1/", false},
		{"127.0.0.1:8080", false},
		{"://bad", false},
	}
	for _, tt := range tests {
		err := checkURL(tt.url)
		if (err == nil) != tt.ok {
			t.Errorf("checkURL(%q) = %v, want ok=%v", tt.url, err, tt.ok)
		}
	}
}

func TestStderrReport(t *testing.T) {
	stderr := "[1:2:ERROR:dbus/bus.cc:405] Failed to connect to the bus\n" +
		"[1:1:ERROR:components/headless/command_handler/headless_command_handler.cc:403] Page load failed: net::ERR_CONNECTION_REFUSED\n" +
		"[1:2:ERROR:dbus/object_proxy.cc:572] Failed to call method\n"
	want := "chromium stderr (2 D-Bus lines left out):\n" +
		"[1:1:ERROR:components/headless/command_handler/headless_command_handler.cc:403] Page load failed: net::ERR_CONNECTION_REFUSED"
	if got := stderrReport(stderr); got != want {
		t.Errorf("stderrReport:\n got %q\nwant %q", got, want)
	}
	if got, want := stderrReport(""), "chromium stderr:\n(nothing)"; got != want {
		t.Errorf("stderrReport(\"\") = %q, want %q", got, want)
	}
	long := make([]byte, 3*stderrTail)
	for i := range long {
		long[i] = 'x'
	}
	if got := stderrReport(string(long)); len(got) > stderrTail+100 {
		t.Errorf("stderrReport of %d bytes returned %d bytes, want at most about %d", len(long), len(got), stderrTail)
	}
}
