package ha_test

import (
	"context"
	"fmt"
	"net/url"
	"os"
	"time"

	mesos "github.com/mesos/mesos-go/api/v1/lib"
	clientv3 "go.etcd.io/etcd/client/v3"
	"go.etcd.io/etcd/server/v3/embed"

	"github.com/regent-sched/regent/core"
	"github.com/regent-sched/regent/ha"
	"github.com/regent-sched/regent/integration/mesossim"
	"github.com/regent-sched/regent/persist"
)

// sleeper keeps one `sleep` task running.
func sleeper(s struct{}, in core.Input) (struct{}, []core.Action) {
	ev, ok := in.Event.(core.OffersReceived)
	if !ok || in.Tasks.Len() > 0 {
		return s, nil
	}
	o, cmd := ev.Offers[0], "sleep 3600"
	return s, []core.Action{core.Launch{OfferIDs: []string{o.ID.Value}, Tasks: []mesos.TaskInfo{{
		Name: "sleeper", TaskID: mesos.TaskID{Value: "sleeper-1"}, AgentID: o.AgentID,
		Command:   &mesos.CommandInfo{Value: &cmd},
		Resources: []mesos.Resource{core.Scalar("cpus", 0.1), core.Scalar("mem", 32)},
	}}}}
}

func Example() {
	// For the example only: a throw-away etcd and a simulated Mesos master.
	// A service uses its own etcd endpoints and Mesos masters.
	dir, _ := os.MkdirTemp("", "ha-example")
	defer os.RemoveAll(dir)
	ecfg := embed.NewConfig()
	ecfg.Dir = dir
	ecfg.LogLevel = "error"
	lc, _ := url.Parse("http://127.0.0.1:0")
	ecfg.ListenClientUrls, ecfg.ListenPeerUrls = []url.URL{*lc}, []url.URL{*lc}
	ecfg.AdvertiseClientUrls, ecfg.AdvertisePeerUrls = []url.URL{*lc}, []url.URL{*lc}
	ecfg.InitialCluster = ecfg.InitialClusterFromName(ecfg.Name)
	etcd, err := embed.StartEtcd(ecfg)
	if err != nil {
		panic(err)
	}
	defer etcd.Close()
	<-etcd.Server.ReadyNotify()
	sim, _ := mesossim.New(mesossim.Config{AllocationInterval: 50 * time.Millisecond})
	defer sim.Close()
	sim.AddAgent(mesossim.AgentSpec{})

	// The service: an etcd client, an elector, a store, the framework.
	cli, err := clientv3.New(clientv3.Config{Endpoints: []string{etcd.Clients[0].Addr().String()}})
	if err != nil {
		panic(err)
	}
	defer cli.Close()
	elector, _ := ha.NewEtcd(cli, ha.EtcdOptions{Framework: "sleeper", TTL: 2 * time.Second})
	defer elector.Close()
	store, _ := persist.NewEtcd(cli, persist.EtcdOptions{Framework: "sleeper"})
	runner, err := ha.New(ha.Config[struct{}]{
		Elector: elector,
		Store:   store,
		Scheduler: core.Config[struct{}]{
			Framework:     core.FrameworkFunc[struct{}](sleeper),
			Masters:       []string{sim.URL()},
			FrameworkInfo: mesos.FrameworkInfo{User: "root", Name: "sleeper"},
		},
	})
	if err != nil {
		panic(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error)
	go func() { done <- runner.Run(ctx) }()

	s, _ := runner.WaitReady(ctx)
	for s.Status().TasksByState["TASK_RUNNING"] != 1 {
		time.Sleep(20 * time.Millisecond)
	}
	fmt.Println("leading:", runner.Status().Leading, "running:", s.Status().TasksByState["TASK_RUNNING"])
	cancel() // hands leadership over at once (resigns)
	fmt.Println("stopped:", <-done)
	// Output:
	// leading: true running: 1
	// stopped: <nil>
}
