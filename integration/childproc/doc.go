// Package childproc starts and controls one child process for integration
// tests and for `regent dev`: a ZooKeeper server, an etcd member, a regent
// replica. It does not depend on the testing package.
//
// [Start] runs [Config.Argv] with the given environment and working
// directory. The child's stdout and stderr go to [Config.Output] (an
// *os.File is handed to the child as is; any other writer is fed through a
// pipe, and its errors are ignored so that a broken log cannot block the
// child) and, when [Config.TailBytes] is set, into an in-memory [Tail]
// whose text [Process.Tail] returns for error messages. On Linux the child
// gets a parent-death signal (SIGKILL): it does not outlive a program that
// crashes or is killed. The kernel sends that signal when the OS thread
// that forked the child exits, so Start forks from a goroutine locked to
// its thread, which then waits for the child and ends only when the child
// has been reaped. [Config.OwnGroup] puts the child in a process group of
// its own, so that a Ctrl-C at the terminal reaches it only through its
// parent.
//
// The returned [Process] reports its end through [Process.Done],
// [Process.Exited] and [Process.ExitStatus], and is controlled with
// signals: [Process.Signal] delivers any, [Process.Pause] sends SIGSTOP and
// (on Linux, by reading /proc) waits until every thread has stopped,
// [Process.Resume] sends SIGCONT, [Process.Stop] asks the process to exit
// with SIGTERM and kills it after a grace period, and [Process.Kill] sends
// SIGKILL and waits until the process is reaped. Signalling a process that
// has exited does nothing, so an owner can always end with Stop or Kill.
//
// The goroutine waiting for the child is owned by the [Process]: it ends
// when the child exits, which the owner guarantees by calling Stop or Kill.
//
// [Environ] builds a child's environment from this process's without the
// variables the child would misread (ETCD_*, JAVA_TOOL_OPTIONS, ...).
package childproc
