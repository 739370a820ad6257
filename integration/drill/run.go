package drill

import (
	"context"
	"fmt"
	"math/rand/v2"
	"strings"
	"time"
)

// Step is one fault as it went: who led before and after, and how long
// Mesos waited for the next leader's SUBSCRIBE and first RECONCILE,
// counted from the fault (zero when nobody subscribed again).
type Step struct {
	Fault      string        `json:"fault"`
	What       string        `json:"what"`
	From       string        `json:"from,omitempty"`
	To         string        `json:"to"`
	Subscribed time.Duration `json:"subscribed_after_ns,omitempty"`
	Reconciled time.Duration `json:"reconciling_after_ns,omitempty"`
}

func (s Step) String() string {
	out := fmt.Sprintf("%s: %s; leader %s -> %s", s.Fault, s.What, s.From, s.To)
	if s.Subscribed > 0 {
		out += fmt.Sprintf(", subscribed after %v, reconciling after %v",
			s.Subscribed.Round(time.Millisecond), s.Reconciled.Round(time.Millisecond))
	}
	return out
}

// Step runs one fault and waits until the topology is whole again: a
// leader ready and subscribed, tasks tasks running and acknowledged.
func (tp *Topology) Step(f Fault, rng *rand.Rand, tasks int) Step {
	tp.t.Helper()
	st := Step{Fault: f.Name}
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	if l, err := tp.Leader(ctx); err == nil {
		st.From = l.ID
	}
	cancel()
	t0 := time.Now()
	st.What = f.Do(tp, rng)
	st.To = tp.WaitLeader(time.Minute).ID
	tp.waitTasks(tasks, time.Minute)
	if tk, ok := takeoverAfter(tp.Calls(), t0); ok {
		st.Subscribed, st.Reconciled = tk.Subscribed.Sub(t0), tk.Reconciled.Sub(t0)
	}
	return st
}

// FaultNames lists the faults a drill can be named after.
func FaultNames() []string {
	names := make([]string, len(Faults))
	for i, f := range Faults {
		names[i] = f.Name
	}
	return names
}

// Rules are the checker's invariants, as a report lists them.
var Rules = []string{
	"one-framework: one FrameworkID in every SUBSCRIBE, one framework in Mesos",
	"deposed-leader: no call accepted on a stream after a newer one subscribed",
	"deposed-call: no call on a stream after its term's election key was gone (frozen replicas excepted)",
	"deposed-commit: every commit in the store made by the term that led when it landed",
	"reconcile: reconciliation started within 5s of every subscription",
	"one-per-slot: one task per agent, no task id launched twice",
	"forgotten: every task Mesos runs is in the leader's state",
	"acked-before-commit: every acknowledged update was committed before its ack",
}

// Report is what Drill returns.
type Report struct {
	Drill      string   `json:"drill"`
	Store      string   `json:"store"`
	Seed       uint64   `json:"seed,omitempty"`
	Steps      []Step   `json:"steps"`
	Rules      []string `json:"rules"`
	Violations []string `json:"violations"`
}

// Drill runs a named drill on the topology, once the first leader runs
// tasks tasks: one of FaultNames runs times, or "soak" (random faults
// drawn from seed for about d). Then it runs the checker. Violations are
// reported, not failed on: the caller decides.
func (tp *Topology) Drill(name string, runs int, seed uint64, d time.Duration, tasks int) Report {
	tp.t.Helper()
	rep := Report{Drill: name, Store: tp.opts.Store, Steps: []Step{}, Rules: Rules, Violations: []string{}}
	tp.WaitLeader(time.Minute)
	tp.waitTasks(tasks, time.Minute)
	switch {
	case name == "soak":
		rep.Seed = seed
		rep.Steps = append(rep.Steps, tp.soak(seed, d, tasks)...)
	default:
		var f *Fault
		for i := range Faults {
			if Faults[i].Name == name {
				f = &Faults[i]
			}
		}
		if f == nil {
			tp.t.Fatalf("drill: no drill %q: want soak or one of %s", name, strings.Join(FaultNames(), ", "))
		}
		rng := rand.New(rand.NewPCG(seed, seed^0x9e3779b97f4a7c15))
		for i := 0; i < runs; i++ {
			st := tp.Step(*f, rng, tasks)
			tp.t.Logf("run %d: %s", i+1, st)
			rep.Steps = append(rep.Steps, st)
		}
	}
	for _, v := range tp.Check(context.Background()) {
		rep.Violations = append(rep.Violations, v.String())
	}
	return rep
}
