// Package zkserver runs a real Apache ZooKeeper server from the Debian
// "zookeeper" package (ZooKeeperServerMain on the JVM), standalone or as
// a member of an ensemble, as a child process, for integration tests and
// for `regent dev`. It does not depend
// on the testing package; integration/testserver wraps it for tests.
//
// [Start] validates its [Options], locates java and the ZooKeeper class
// path ([Installed] does only that), writes zoo.cfg into the server's
// directory, starts
//
//	java -cp /usr/share/java/zookeeper.jar:/etc/zookeeper/conf \
//	    org.apache.zookeeper.server.ZooKeeperServerMain <dir>/zoo.cfg
//
// and returns once the server answers the four-letter word "ruok" with
// "imok", "stat" shows it serving requests and, on Linux, the port is held
// by this process rather than by another server. The server listens on
// 127.0.0.1 only, with the admin server off and only the four-letter words
// ruok and stat enabled. Its stdout and stderr go to [Options.Log], or to
// zookeeper.log in its directory; the tail of that output is also kept in
// memory and quoted in the error when the server fails to start.
//
// The returned [Server] stops, kills, freezes (SIGSTOP), thaws (SIGCONT)
// and restarts the process on the same port and data directory, and
// [Server.Close] ends it and removes the directory if Start created it.
// Every method reports problems as errors. The process is started with a
// parent-death signal on Linux, so it does not outlive a program that
// crashes or is killed without calling Close.
//
// [StartEnsemble] runs a replicated ensemble instead, normally of three
// members on loopback, so that drills can kill members and lose and
// restore the quorum. Each member is a [Server] started from [Options]
// with [Options.Ensemble] and [Options.MyID] set: it runs
//
//	org.apache.zookeeper.server.quorum.QuorumPeerMain <dir>/zoo.cfg
//
// with a server.N line for every member in zoo.cfg and its id in
// <dir>/data/myid, and counts as serving once stat reports it as leader or
// follower, which needs a quorum. The members start concurrently; the
// returned [Ensemble] lists them, restarts several together (a member
// restarted alone while the quorum is lost would wait for the others),
// and kills them all at [Ensemble.Close].
//
// If ZooKeeper or Java is missing, [Start], [StartEnsemble] and
// [Installed] return an error matching [ErrNotInstalled] that names the
// install command. The environment variable ZOOKEEPER_CLASSPATH replaces
// the default class path for other layouts, and JAVA (or JAVA_HOME)
// selects the java binary.
package zkserver
