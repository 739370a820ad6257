// Package testserver starts real coordination servers for integration tests:
// etcd and Apache ZooKeeper. Nothing in it is a mock or a fake; every helper
// runs the genuine server code and talks to it over loopback TCP.
//
// Three kinds of server are offered:
//
//   - [StartEtcd] runs an etcd member inside the test process through
//     go.etcd.io/etcd/server/v3/embed. It is the cheapest option and suits
//     tests that only need a working key-value store.
//
//     [StartEtcdTLS] is the same member serving only HTTPS and requiring a
//     client certificate from a throw-away [PKI] (NewPKI: a CA that issues
//     server and client certificates as PEM files); [Etcd.EnableAuth] turns
//     on etcd's user authentication with users confined to key prefixes.
//
//   - [StartEtcdCluster] runs one or three etcd members as child processes.
//     Each member can be killed (SIGKILL), frozen (SIGSTOP), thawed (SIGCONT)
//     and restarted from its data directory, which is what failover and
//     partition tests need. The binary is built once per test process from
//     ./etcdproc (a two-line wrapper around etcdmain.Main) with `go build`,
//     so it always matches the etcd version pinned in go.mod. The build is
//     cached in a directory under os.TempDir whose name is derived from a
//     hash of go.mod, go.sum, the wrapper source and the Go version; the
//     first build takes a minute or two, later test runs reuse it.
//
//   - [StartZooKeeper] runs a standalone ZooKeeper server from the Debian
//     "zookeeper" package (ZooKeeperServerMain on the JVM) as a child
//     process, through package integration/zkserver, which does the work
//     without the testing package (for `regent dev`). If the package or
//     Java is missing the test fails and names the command that installs it
//     (scripts/install-zookeeper.sh); it never skips. The environment
//     variable ZOOKEEPER_CLASSPATH replaces the default class path
//     (/usr/share/java/zookeeper.jar:/etc/zookeeper/conf) for other
//     layouts, and JAVA selects the java binary. Its clients bound the
//     connect handshake, so a restarting server does not stall them.
//
//   - [StartZooKeeperEnsemble] runs an ensemble of such servers
//     (QuorumPeerMain), normally 3, for tests that kill members and lose
//     the quorum; members killed until the quorum was lost come back
//     together with [ZooKeeperEnsemble.Restart].
//
// Every server listens on free 127.0.0.1 ports, keeps its data under
// t.TempDir(), and is torn down by t.Cleanup even when the test fails:
// child processes are killed and reaped, and embedded servers are closed.
// Server logs are kept out of the way (in memory or in a file under the
// test's temporary directory) and the tail is written to the test log only
// when the test has failed.
//
// Helpers that take a tb.TB (a *testing.T, or the Runner of regent drill
// --local) report problems with t.Fatalf, so they and
// the methods of the returned servers must be called from the goroutine
// running the test that started the server, not from other goroutines or
// from subtests of it.
//
// Child processes are started with a parent-death signal (Linux), so they
// do not outlive a test binary that crashes or is killed by a timeout.
package testserver
