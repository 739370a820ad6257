// Command etcdproc is a real etcd server binary built from the etcd module
// pinned in go.mod. The testserver package builds it on demand and runs
// cluster members as child processes, so that tests can SIGKILL, SIGSTOP
// and restart individual members. It accepts exactly the flags of the
// upstream etcd binary.
package main

import (
	"os"

	"go.etcd.io/etcd/server/v3/etcdmain"
)

func main() {
	etcdmain.Main(os.Args)
}
