package zkserver

import (
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
)

// ErrNotInstalled reports that ZooKeeper or Java is missing. Errors from
// [Start] and [Installed] wrap it together with what exactly was not found.
var ErrNotInstalled = errors.New("ZooKeeper or Java is not installed; " +
	"install them with `sudo scripts/install-zookeeper.sh` " +
	"(or `sudo sh -c 'apt-get update && apt-get install -y --no-install-recommends zookeeper'`)")

// Installation layout of the Debian "zookeeper" package.
const (
	debianJar       = "/usr/share/java/zookeeper.jar"
	debianConfDir   = "/etc/zookeeper/conf"
	slf4jSimpleJar  = "/usr/share/java/slf4j-simple.jar"
	serverMainClass = "org.apache.zookeeper.server.ZooKeeperServerMain"
	quorumMainClass = "org.apache.zookeeper.server.quorum.QuorumPeerMain"
)

// Installed reports whether ZooKeeper and Java can be found, as [Start]
// looks for them. The error wraps [ErrNotInstalled] and says what is
// missing.
func Installed() error {
	_, _, err := command()
	return err
}

// command locates java and the ZooKeeper class path.
func command() (java, classpath string, err error) {
	classpath = os.Getenv("ZOOKEEPER_CLASSPATH")
	if classpath == "" {
		if _, err := os.Stat(debianJar); err != nil {
			return "", "", fmt.Errorf("%s not found and ZOOKEEPER_CLASSPATH not set (%v): %w", debianJar, err, ErrNotInstalled)
		}
		classpath = debianJar + string(os.PathListSeparator) + debianConfDir
		// The Debian jar ships no SLF4J binding, so the server would log
		// nothing; slf4j-simple (from libslf4j-java) makes it log to stderr.
		if _, err := os.Stat(slf4jSimpleJar); err == nil {
			classpath += string(os.PathListSeparator) + slf4jSimpleJar
		}
	}
	switch {
	case os.Getenv("JAVA") != "":
		java = os.Getenv("JAVA")
	case os.Getenv("JAVA_HOME") != "":
		java = filepath.Join(os.Getenv("JAVA_HOME"), "bin", "java")
	default:
		java = "java"
	}
	path, err := exec.LookPath(java)
	if err != nil {
		return "", "", fmt.Errorf("java not found (%v): %w", err, ErrNotInstalled)
	}
	return path, classpath, nil
}
