// Package browser lets tests look at a page the way a person would: it runs
// the real headless Chromium from the Debian "chromium" package against a
// URL and returns the DOM after load ([DumpDOM]) or a PNG of what the window
// shows ([Screenshot]). [VisibleText] turns a DOM into the text a reader
// sees, for assertions. Nothing here is a mock; there is no third-party
// driver either, only the chromium binary run with os/exec.
//
// [Find] locates the binary: $CHROMIUM if set, else the first of chromium,
// chromium-browser, google-chrome-stable and google-chrome on PATH. When
// none is there the error wraps [ErrNotInstalled] and names the command that
// installs it (scripts/install-chromium.sh, which `make deps` runs). Tests
// must fail with that error, never skip.
//
// The path of one call: a fresh directory under os.TempDir holds the
// profile (--user-data-dir), HOME, the XDG directories, TMPDIR and the
// output files of that run only. Chromium starts in a process group of its
// own with the flags needed as root in a container (--headless, --no-sandbox,
// --disable-gpu, --disable-dev-shm-usage) and with every background service
// that could reach the network switched off. On top of those flags, host
// names other than localhost do not resolve and every non-loopback request
// goes to a proxy at 127.0.0.1:9 that does not exist, so the browser reaches
// only loopback; URLs naming another host are refused before Chromium
// starts. Chromium's stdout and stderr go to files in that directory.
//
// When Chromium exits, or when the context ends and the whole process group
// is killed, the call kills what is left of the group and the crash handlers
// Chromium double-forks out of it (found in /proc by the temporary directory
// on their command lines), waits until none of them runs, and removes the
// directory. So no Chromium process outlives a call, and nothing is written
// under the caller's HOME. Chromium orphans its zygotes and crash handlers
// even when it exits normally; they are dead by the time a call returns,
// but they stay in the process table as zombies until PID 1 reaps them
// (here within about a second; a container whose PID 1 never reaps, such
// as Docker without --init, keeps them). A context without a deadline gets
// one of [DefaultTimeout].
//
// Headless Chromium reports a page that did not load (refused connection,
// unknown host) only on stderr and still exits with status 0; such calls
// return an error wrapping [ErrLoadFailed] with Chromium's net:: error code.
// An HTTP error status is not a load failure: the page loaded, and the DOM
// or screenshot shows what the server sent. Every error from a run carries
// the tail of Chromium's stderr, less the D-Bus complaints of a machine
// without a D-Bus daemon.
//
// A call takes about a second on an idle 2-core machine and two to three
// under load, nearly all of it Chromium starting and stopping. Calls may
// run concurrently; each has its own directory.
package browser
