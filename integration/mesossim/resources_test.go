package mesossim

import (
	"math"
	"testing"

	mesos "github.com/mesos/mesos-go/api/v1/lib"
)

func ranges(name string, rs ...[2]uint64) mesos.Resource {
	var vr []mesos.Value_Range
	for _, r := range rs {
		vr = append(vr, mesos.Value_Range{Begin: r[0], End: r[1]})
	}
	return mesos.Resource{Name: name, Type: mesos.RANGES.Enum(), Ranges: &mesos.Value_Ranges{Range: vr}}
}

func set(name string, items ...string) mesos.Resource {
	return mesos.Resource{Name: name, Type: mesos.SET.Enum(), Set: &mesos.Value_Set{Item: items}}
}

func mustPool(t *testing.T, rs ...mesos.Resource) pool {
	t.Helper()
	p, err := poolOf(rs)
	if err != nil {
		t.Fatalf("poolOf: %v", err)
	}
	return p
}

func TestPoolSumsEveryEntryOfAName(t *testing.T) {
	// Two cpus entries (say, of different roles) both count: the bug of the
	// Scala library this project replaces was to collapse them into one.
	p := mustPool(t, scalar("cpus", 1), scalar("cpus", 1), scalar("mem", 0.1), scalar("mem", 0.2))
	if p.scalars["cpus"] != 2000 || p.scalars["mem"] != 300 {
		t.Fatalf("sums = %v", p.scalars)
	}
}

func TestPoolInvalid(t *testing.T) {
	noType := mesos.Resource{Name: "cpus", Scalar: &mesos.Value_Scalar{Value: 1}}
	wrongValue := mesos.Resource{Name: "cpus", Type: mesos.SCALAR.Enum(), Ranges: &mesos.Value_Ranges{}}
	for name, rs := range map[string][]mesos.Resource{
		"no name":          {scalar("", 1)},
		"no type":          {noType},
		"scalar as ranges": {wrongValue},
		"negative":         {scalar("cpus", -1)},
		"NaN":              {scalar("cpus", math.NaN())},
		"inf":              {scalar("cpus", math.Inf(1))},
		"inverted range":   {ranges("ports", [2]uint64{10, 1})},
		"overlap":          {ranges("ports", [2]uint64{1, 10}), ranges("ports", [2]uint64{5, 6})},
		"duplicate item":   {set("disks", "a", "a")},
	} {
		if _, err := poolOf(rs); err == nil {
			t.Errorf("%s: accepted", name)
		}
	}
}

func TestPoolArithmetic(t *testing.T) {
	total := mustPool(t, scalar("cpus", 4), ranges("ports", [2]uint64{100, 200}), set("gpus", "0", "1"))
	for _, tc := range []struct {
		name string
		need pool
		fits bool
		left string
	}{
		{"all", total.clone(), true, ""},
		{"some", mustPool(t, scalar("cpus", 1.5), ranges("ports", [2]uint64{150, 150}), set("gpus", "1")),
			true, "cpus:2.5;ports:[100-149, 151-200];gpus:{0}"},
		{"too many cpus", mustPool(t, scalar("cpus", 4.001)), false, ""},
		{"port outside", mustPool(t, ranges("ports", [2]uint64{199, 201})), false, ""},
		{"unknown resource", mustPool(t, scalar("disk", 1)), false, ""},
		{"missing item", mustPool(t, set("gpus", "2")), false, ""},
		{"empty", newPool(), true, total.String()},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if got := total.contains(tc.need); got != tc.fits {
				t.Fatalf("contains = %v, want %v", got, tc.fits)
			}
			if !tc.fits {
				return
			}
			rest := total.clone()
			rest.sub(tc.need)
			if rest.String() != tc.left {
				t.Fatalf("left %q, want %q", rest.String(), tc.left)
			}
			rest.add(tc.need)
			if rest.String() != total.String() {
				t.Fatalf("add after sub = %q, want %q", rest.String(), total.String())
			}
		})
	}
}

func TestPoolRendersOfferResources(t *testing.T) {
	p := mustPool(t, scalar("mem", 128), scalar("cpus", 0.5), ranges("ports", [2]uint64{1, 2}, [2]uint64{3, 5}))
	rs := p.resources("web")
	if len(rs) != 3 || rs[0].Name != "cpus" || rs[2].Name != "ports" || len(rs[2].Ranges.Range) != 1 {
		t.Fatalf("resources = %v", rs)
	}
	for _, r := range rs {
		if r.GetAllocationInfo().GetRole() != "web" {
			t.Fatalf("allocation role of %v", r)
		}
	}
	back := mustPool(t, rs...)
	if back.String() != p.String() {
		t.Fatalf("round trip %q != %q", back.String(), p.String())
	}
}

// FuzzPoolSubAdd checks that taking a part out of a pool and putting it
// back restores it exactly, whatever the numbers.
func FuzzPoolSubAdd(f *testing.F) {
	f.Add(4.0, 1.5, uint64(100), uint64(200), uint64(120), uint64(130))
	f.Add(0.001, 0.001, uint64(0), uint64(0), uint64(0), uint64(0))
	f.Fuzz(func(t *testing.T, total, part float64, b, e, pb, pe uint64) {
		if total < 0 || part < 0 || total > 1e12 || part > 1e12 || b > e || pb > pe || math.IsNaN(total) || math.IsNaN(part) {
			return
		}
		whole, err := poolOf([]mesos.Resource{scalar("cpus", total), ranges("ports", [2]uint64{b, e})})
		if err != nil {
			t.Fatal(err)
		}
		need, err := poolOf([]mesos.Resource{scalar("cpus", part), ranges("ports", [2]uint64{pb, pe})})
		if err != nil {
			t.Fatal(err)
		}
		fits := whole.contains(need)
		wantFits := toMilli(part) <= toMilli(total) && pb >= b && pe <= e
		if fits != wantFits {
			t.Fatalf("contains = %v, want %v", fits, wantFits)
		}
		if !fits {
			return
		}
		rest := whole.clone()
		rest.sub(need)
		if rest.contains(need) && need.ranges["ports"] != nil {
			t.Fatalf("ports %v still in the rest %v", need, rest)
		}
		rest.add(need)
		if rest.String() != whole.String() {
			t.Fatalf("sub+add = %q, want %q", rest.String(), whole.String())
		}
	})
}
