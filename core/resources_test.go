package core

import (
	"errors"
	"math"
	"slices"
	"strings"
	"testing"

	mesos "github.com/mesos/mesos-go/api/v1/lib"
	mesosresources "github.com/mesos/mesos-go/api/v1/lib/resources"
)

// resAlloc returns r allocated to role, as a MULTI_ROLE offer carries it.
func resAlloc(role string, r mesos.Resource) mesos.Resource {
	r.AllocationInfo = &mesos.Resource_AllocationInfo{Role: &role}
	return r
}

// resReserve returns r dynamically reserved for role (reservations stack).
func resReserve(role string, r mesos.Resource) mesos.Resource {
	r.Reservations = []mesos.Resource_ReservationInfo{{Type: mesos.Resource_ReservationInfo_DYNAMIC.Enum(), Role: &role}}
	return r
}

// resLegacyRole returns r with the pre-refinement role field (and, if
// dynamic, the legacy reservation field).
func resLegacyRole(role string, dynamic bool, r mesos.Resource) mesos.Resource {
	r.Role = &role
	if dynamic {
		r.Reservation = &mesos.Resource_ReservationInfo{}
	}
	return r
}

func resRange(b, e uint64) mesos.Value_Range { return mesos.Value_Range{Begin: b, End: e} }

func resMust(t testing.TB, rs ...mesos.Resource) Resources {
	t.Helper()
	r, err := ResourcesOf(rs)
	if err != nil {
		t.Fatalf("ResourcesOf: %v", err)
	}
	return r
}

func resTyped(name string, typ mesos.Value_Type) mesos.Resource {
	return mesos.Resource{Name: name, Type: typ.Enum()}
}

func TestResourcesOf(t *testing.T) {
	nanCPU := Scalar("cpus", math.NaN())
	both := Scalar("cpus", 1)
	both.Ranges = &mesos.Value_Ranges{}
	unknown := Scalar("cpus", 1)
	unknown.Type = mesos.Value_Type(7).Enum()
	noType := Scalar("cpus", 1)
	noType.Type = nil
	text := resTyped("notes", mesos.TEXT)

	tests := []struct {
		name    string
		in      []mesos.Resource
		want    string
		wantErr string // substring; the error must also wrap ErrInvalidResources
	}{
		{name: "nil", in: nil, want: ""},
		{name: "two roles sum", in: []mesos.Resource{
			resAlloc("a", Scalar("cpus", 1)), resAlloc("b", Scalar("cpus", 1.5)),
		}, want: "cpus:2.5"},
		{name: "reserved and unreserved sum", in: []mesos.Resource{
			Scalar("mem", 128),
			resReserve("web", Scalar("mem", 256)),
			resLegacyRole("web", true, Scalar("mem", 64)),
			resLegacyRole("static", false, Scalar("mem", 32)),
		}, want: "mem:480"},
		{name: "identical duplicates sum", in: []mesos.Resource{
			Scalar("cpus", 1), Scalar("cpus", 1),
		}, want: "cpus:2"},
		{name: "fixed point", in: []mesos.Resource{
			Scalar("cpus", 0.1), Scalar("cpus", 0.2),
		}, want: "cpus:0.3"},
		{name: "rounds to three decimals", in: []mesos.Resource{
			Scalar("cpus", 0.0004), Scalar("cpus", 0.1236),
		}, want: "cpus:0.124"},
		{name: "any scalar name", in: []mesos.Resource{
			Scalar("gpus", 1), Scalar("fpgas", 2), resAlloc("a", Scalar("gpus", 1)),
		}, want: "fpgas:2;gpus:2"},
		{name: "zero scalar dropped", in: []mesos.Resource{Scalar("cpus", 0), Scalar("mem", -0.0)}, want: ""},
		{name: "ranges sorted and adjacent merged", in: []mesos.Resource{
			Ranges("ports", resRange(31005, 31010), resRange(31000, 31004), resRange(32000, 32000)),
		}, want: "ports:[31000-31010, 32000-32000]"},
		{name: "adjacent ranges across roles merge", in: []mesos.Resource{
			resAlloc("a", PortRange(31000, 31004)), resReserve("b", PortRange(31005, 31005)),
			PortRange(31006, 31009),
		}, want: "ports:[31000-31009]"},
		{name: "ranges at uint64 limits", in: []mesos.Resource{
			Ranges("big", resRange(math.MaxUint64, math.MaxUint64), resRange(0, math.MaxUint64-1)),
		}, want: "big:[0-18446744073709551615]"},
		{name: "empty ranges and set", in: []mesos.Resource{
			Ranges("ports"), Set("zones"),
		}, want: ""},
		{name: "sets union and sort", in: []mesos.Resource{
			Set("zones", "b", "a"), resAlloc("x", Set("zones", "c")),
		}, want: "zones:{a, b, c}"},
		{name: "mixed", in: []mesos.Resource{
			Scalar("mem", 128), PortRange(31000, 31001), Scalar("cpus", 1.5),
		}, want: "cpus:1.5;mem:128;ports:[31000-31001]"},

		{name: "overlap within one entry", in: []mesos.Resource{
			Ranges("ports", resRange(1, 5), resRange(5, 9)),
		}, wantErr: `resource 0 "ports": range [5-9] overlaps [1-5] of the same resource`},
		{name: "duplicate range within one entry", in: []mesos.Resource{
			Ranges("ports", resRange(1, 5), resRange(1, 5)),
		}, wantErr: "overlaps [1-5]"},
		{name: "overlap across entries", in: []mesos.Resource{
			PortRange(1, 5), resAlloc("b", PortRange(3, 4)),
		}, wantErr: `resource 1 "ports": range [3-4] overlaps [1-5] of resource 0`},
		{name: "begin after end", in: []mesos.Resource{PortRange(9, 1)}, wantErr: "range [9-1] has begin > end"},
		{name: "duplicate set item", in: []mesos.Resource{Set("zones", "a", "a")}, wantErr: `item "a" repeats`},
		{name: "duplicate set item across entries", in: []mesos.Resource{
			Set("zones", "a"), Set("zones", "b", "a"),
		}, wantErr: `resource 1 "zones": item "a" repeats an item of resource 0`},
		{name: "empty name", in: []mesos.Resource{Scalar("", 1)}, wantErr: "empty name"},
		{name: "no type", in: []mesos.Resource{Scalar("cpus", 1), noType}, wantErr: `resource 1 "cpus": no type`},
		{name: "unknown type", in: []mesos.Resource{unknown}, wantErr: `"cpus": unknown type 7`},
		{name: "text type", in: []mesos.Resource{text}, wantErr: `"notes": type TEXT`},
		{name: "nil scalar", in: []mesos.Resource{resTyped("cpus", mesos.SCALAR)}, wantErr: `"cpus": type SCALAR needs exactly a scalar value`},
		{name: "nil ranges", in: []mesos.Resource{resTyped("ports", mesos.RANGES)}, wantErr: `"ports": type RANGES needs`},
		{name: "nil set", in: []mesos.Resource{resTyped("zones", mesos.SET)}, wantErr: `"zones": type SET needs`},
		{name: "two values", in: []mesos.Resource{both}, wantErr: "needs exactly a scalar value"},
		{name: "NaN", in: []mesos.Resource{nanCPU}, wantErr: `"cpus": scalar NaN is not finite`},
		{name: "infinite", in: []mesos.Resource{Scalar("mem", math.Inf(1))}, wantErr: "+Inf is not finite"},
		{name: "negative", in: []mesos.Resource{Scalar("mem", -1)}, wantErr: "scalar -1 is negative"},
		{name: "too large", in: []mesos.Resource{Scalar("disk", 2e12)}, wantErr: "exceeds"},
		{name: "sum too large", in: []mesos.Resource{Scalar("disk", 6e11), Scalar("disk", 6e11)}, wantErr: `resource 1 "disk": scalar total exceeds`},
		{name: "type conflict", in: []mesos.Resource{Scalar("ports", 1), PortRange(1, 2)}, wantErr: `resource 1 "ports": type RANGES conflicts with type SCALAR of resource 0`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := ResourcesOf(tt.in)
			if tt.wantErr != "" {
				if !errors.Is(err, ErrInvalidResources) || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("err = %v, want ErrInvalidResources containing %q", err, tt.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatalf("err = %v", err)
			}
			if got.String() != tt.want {
				t.Fatalf("got %q, want %q", got, tt.want)
			}
		})
	}
}

func TestResourcesAccessors(t *testing.T) {
	r := resMust(t,
		Scalar("cpus", 0.1), Scalar("cpus", 0.2), Scalar("mem", 64),
		PortRange(31002, 31003), PortRange(31000, 31001), Set("zones", "b", "a"))
	tests := []struct {
		name       string
		scalar     float64
		ranges     []mesos.Value_Range
		set        []string
		wantScalar float64
	}{
		{name: "cpus", scalar: 0.3},
		{name: "mem", scalar: 64},
		{name: "ports", ranges: []mesos.Value_Range{resRange(31000, 31003)}},
		{name: "zones", set: []string{"a", "b"}},
		{name: "missing"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := r.Scalar(tt.name); got != tt.scalar {
				t.Errorf("Scalar = %v, want %v", got, tt.scalar)
			}
			if got := r.Ranges(tt.name); !slices.Equal(got, tt.ranges) {
				t.Errorf("Ranges = %v, want %v", got, tt.ranges)
			}
			if got := r.Set(tt.name); !slices.Equal(got, tt.set) {
				t.Errorf("Set = %v, want %v", got, tt.set)
			}
		})
	}
	// Accessors return copies.
	r.Ranges("ports")[0].Begin = 1
	r.Set("zones")[0] = "z"
	if got := r.String(); got != "cpus:0.3;mem:64;ports:[31000-31003];zones:{a, b}" {
		t.Fatalf("accessor results alias r: %s", got)
	}
}

func TestResourcesContains(t *testing.T) {
	offer := resMust(t, Scalar("cpus", 2), Scalar("mem", 1024),
		Ranges("ports", resRange(100, 200), resRange(300, 300)), Set("zones", "a", "c"))
	tests := []struct {
		name string
		in   []mesos.Resource
		want bool
	}{
		{name: "empty", want: true},
		{name: "itself", in: offer.ToProto(""), want: true},
		{name: "scalar equal", in: []mesos.Resource{Scalar("cpus", 1), Scalar("cpus", 1)}, want: true},
		{name: "scalar over by a thousandth", in: []mesos.Resource{Scalar("cpus", 2.001)}, want: false},
		{name: "missing name", in: []mesos.Resource{Scalar("gpus", 1)}, want: false},
		{name: "type mismatch", in: []mesos.Resource{Ranges("cpus", resRange(1, 1))}, want: false},
		{name: "ranges inside", in: []mesos.Resource{Ranges("ports", resRange(100, 100), resRange(150, 200), resRange(300, 300))}, want: true},
		{name: "range across gap", in: []mesos.Resource{PortRange(200, 300)}, want: false},
		{name: "range past end", in: []mesos.Resource{PortRange(300, 301)}, want: false},
		{name: "range before start", in: []mesos.Resource{PortRange(99, 100)}, want: false},
		{name: "set subset", in: []mesos.Resource{Set("zones", "c")}, want: true},
		{name: "set item missing", in: []mesos.Resource{Set("zones", "a", "b")}, want: false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			in := resMust(t, tt.in...)
			if got := offer.Contains(in); got != tt.want {
				t.Fatalf("Contains(%s) = %v, want %v", in, got, tt.want)
			}
			if _, err := offer.Minus(in); (err == nil) != tt.want {
				t.Fatalf("Minus(%s) err = %v, want contained=%v", in, err, tt.want)
			}
		})
	}
}

func TestResourcesPlus(t *testing.T) {
	tests := []struct {
		name    string
		a, b    []mesos.Resource
		want    string
		wantErr string
	}{
		{name: "both empty", want: ""},
		{name: "fixed point", a: []mesos.Resource{Scalar("cpus", 0.1)}, b: []mesos.Resource{Scalar("cpus", 0.2)}, want: "cpus:0.3"},
		{name: "disjoint names", a: []mesos.Resource{Scalar("mem", 1)}, b: []mesos.Resource{Scalar("cpus", 1), Set("zones", "a")}, want: "cpus:1;mem:1;zones:{a}"},
		{name: "adjacent ranges merge", a: []mesos.Resource{Ranges("ports", resRange(1, 2), resRange(6, 7))},
			b: []mesos.Resource{Ranges("ports", resRange(3, 5), resRange(9, 9))}, want: "ports:[1-7, 9-9]"},
		{name: "sets", a: []mesos.Resource{Set("zones", "a", "c")}, b: []mesos.Resource{Set("zones", "b")}, want: "zones:{a, b, c}"},
		{name: "overlapping ranges", a: []mesos.Resource{Ranges("ports", resRange(1, 2), resRange(4, 8))},
			b: []mesos.Resource{Ranges("ports", resRange(3, 3), resRange(6, 10))}, wantErr: `plus "ports": range [6-8] is in both`},
		{name: "shared set item", a: []mesos.Resource{Set("zones", "a", "b")}, b: []mesos.Resource{Set("zones", "b")}, wantErr: `item "b" is in both`},
		{name: "type conflict", a: []mesos.Resource{Scalar("ports", 1)}, b: []mesos.Resource{PortRange(1, 1)}, wantErr: "conflicts"},
		{name: "overflow", a: []mesos.Resource{Scalar("disk", 6e11)}, b: []mesos.Resource{Scalar("disk", 6e11)}, wantErr: "exceeds"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			a, b := resMust(t, tt.a...), resMust(t, tt.b...)
			aStr, bStr := a.String(), b.String()
			got, err := a.Plus(b)
			if a.String() != aStr || b.String() != bStr {
				t.Fatalf("Plus modified its operands")
			}
			if tt.wantErr != "" {
				if !errors.Is(err, ErrInvalidResources) || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("err = %v, want ErrInvalidResources containing %q", err, tt.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatalf("err = %v", err)
			}
			if got.String() != tt.want {
				t.Fatalf("got %q, want %q", got, tt.want)
			}
			if all := resMust(t, append(slices.Clone(tt.a), tt.b...)...); !all.Equal(got) {
				t.Fatalf("Plus = %s, ResourcesOf(a and b) = %s", got, all)
			}
		})
	}
}

func TestResourcesMinus(t *testing.T) {
	base := []mesos.Resource{Scalar("cpus", 0.3), Scalar("mem", 128),
		Ranges("ports", resRange(10, 20), resRange(30, 30)), Set("zones", "a", "b", "c")}
	tests := []struct {
		name    string
		b       []mesos.Resource
		want    string
		wantErr string // substring; the error must also wrap ErrNotContained
	}{
		{name: "nothing", want: "cpus:0.3;mem:128;ports:[10-20, 30-30];zones:{a, b, c}"},
		{name: "fixed point", b: []mesos.Resource{Scalar("cpus", 0.1), Scalar("cpus", 0.2)}, want: "mem:128;ports:[10-20, 30-30];zones:{a, b, c}"},
		{name: "split range", b: []mesos.Resource{Ranges("ports", resRange(12, 13), resRange(15, 15), resRange(20, 20))},
			want: "cpus:0.3;mem:128;ports:[10-11, 14-14, 16-19, 30-30];zones:{a, b, c}"},
		{name: "whole ranges", b: []mesos.Resource{Ranges("ports", resRange(10, 20), resRange(30, 30))}, want: "cpus:0.3;mem:128;zones:{a, b, c}"},
		{name: "range ends", b: []mesos.Resource{Ranges("ports", resRange(10, 10), resRange(20, 20))}, want: "cpus:0.3;mem:128;ports:[11-19, 30-30];zones:{a, b, c}"},
		{name: "set items", b: []mesos.Resource{Set("zones", "a", "c")}, want: "cpus:0.3;mem:128;ports:[10-20, 30-30];zones:{b}"},
		{name: "everything", b: base, want: ""},
		{name: "scalar too large", b: []mesos.Resource{Scalar("cpus", 0.301)}, wantErr: `minus "cpus"`},
		{name: "missing name", b: []mesos.Resource{Scalar("gpus", 1)}, wantErr: `minus "gpus"`},
		{name: "range partly outside", b: []mesos.Resource{PortRange(20, 21)}, wantErr: `minus "ports"`},
		{name: "range in gap", b: []mesos.Resource{PortRange(25, 25)}, wantErr: `minus "ports"`},
		{name: "set item missing", b: []mesos.Resource{Set("zones", "d")}, wantErr: `minus "zones"`},
		{name: "type mismatch", b: []mesos.Resource{Scalar("ports", 1)}, wantErr: `minus "ports"`},
	}
	a := resMust(t, base...)
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			b := resMust(t, tt.b...)
			got, err := a.Minus(b)
			if tt.wantErr != "" {
				if !errors.Is(err, ErrNotContained) || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("err = %v, want ErrNotContained containing %q", err, tt.wantErr)
				}
				if a.Contains(b) {
					t.Fatalf("Contains = true but Minus failed")
				}
				return
			}
			if err != nil {
				t.Fatalf("err = %v", err)
			}
			if got.String() != tt.want {
				t.Fatalf("got %q, want %q", got, tt.want)
			}
			back, err := got.Plus(b)
			if err != nil || !back.Equal(a) {
				t.Fatalf("(a-b)+b = %s, %v; want %s", back, err, a)
			}
		})
	}
}

func TestResourcesEqualIsEmpty(t *testing.T) {
	tests := []struct {
		name      string
		a, b      []mesos.Resource
		equal     bool
		aIsEmpty  bool
		aRendered string
	}{
		{name: "zero values", equal: true, aIsEmpty: true},
		{name: "zero scalars are empty", a: []mesos.Resource{Scalar("cpus", 0), Ranges("ports"), Set("z")}, equal: true, aIsEmpty: true},
		{name: "order and split do not matter",
			a:     []mesos.Resource{PortRange(5, 9), Scalar("cpus", 1), PortRange(1, 4)},
			b:     []mesos.Resource{Scalar("cpus", 0.5), Ranges("ports", resRange(1, 9)), Scalar("cpus", 0.5)},
			equal: true, aRendered: "cpus:1;ports:[1-9]"},
		{name: "roles do not matter", a: []mesos.Resource{resAlloc("a", Scalar("cpus", 1))}, b: []mesos.Resource{Scalar("cpus", 1)},
			equal: true, aRendered: "cpus:1"},
		{name: "different scalar", a: []mesos.Resource{Scalar("cpus", 1)}, b: []mesos.Resource{Scalar("cpus", 1.001)}, aRendered: "cpus:1"},
		{name: "different name", a: []mesos.Resource{Scalar("cpus", 1)}, b: []mesos.Resource{Scalar("gpus", 1)}, aRendered: "cpus:1"},
		{name: "different type", a: []mesos.Resource{Set("x", "1")}, b: []mesos.Resource{Ranges("x", resRange(1, 1))}, aRendered: "x:{1}"},
		{name: "subset", a: []mesos.Resource{Scalar("cpus", 1)}, b: []mesos.Resource{Scalar("cpus", 1), Scalar("mem", 1)}, aRendered: "cpus:1"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			a, b := resMust(t, tt.a...), resMust(t, tt.b...)
			if a.Equal(b) != tt.equal || b.Equal(a) != tt.equal {
				t.Errorf("Equal = %v, want %v", a.Equal(b), tt.equal)
			}
			if a.IsEmpty() != tt.aIsEmpty {
				t.Errorf("IsEmpty = %v, want %v", a.IsEmpty(), tt.aIsEmpty)
			}
			if a.String() != tt.aRendered {
				t.Errorf("String = %q, want %q", a, tt.aRendered)
			}
		})
	}
	if !(Resources{}).Equal(resMust(t)) {
		t.Fatal("zero Resources differs from ResourcesOf(nil)")
	}
}

func TestResourcesToProto(t *testing.T) {
	tests := []struct {
		name string
		in   []mesos.Resource
		role string
	}{
		{name: "empty", role: "web"},
		{name: "typical", role: "web", in: []mesos.Resource{
			Scalar("cpus", 0.1), Scalar("cpus", 0.2), Scalar("mem", 128.5), Scalar("gpus", 1),
			Ranges("ports", resRange(31000, 31001), resRange(31003, 31003)), Set("zones", "b", "a"),
		}},
		{name: "no role", in: []mesos.Resource{Scalar("cpus", 1), PortRange(1, 2)}},
		{name: "reserved input loses reservation", role: "web", in: []mesos.Resource{
			resReserve("web", Scalar("cpus", 1)), resLegacyRole("web", true, Scalar("mem", 2)),
		}},
		{name: "largest scalar", role: "r", in: []mesos.Resource{Scalar("disk", 1e12), Scalar("x", 999999999999.999)}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := resMust(t, tt.in...)
			out := r.ToProto(tt.role)
			if len(out) != len(r.entries) {
				t.Fatalf("ToProto gave %d resources for %s", len(out), r)
			}
			for i, res := range out {
				if tt.role == "" && res.AllocationInfo != nil {
					t.Errorf("resource %d has allocation info without a role", i)
				}
				if tt.role != "" && !ForRole(tt.role)(res) {
					t.Errorf("resource %d %s not allocated to %q", i, res.Name, tt.role)
				}
				if Reserved(res) {
					t.Errorf("resource %d %s is reserved", i, res.Name)
				}
				if i > 0 && out[i-1].Name >= res.Name {
					t.Errorf("resources not in name order: %q then %q", out[i-1].Name, res.Name)
				}
			}
			back, err := ResourcesOf(out)
			if err != nil || !back.Equal(r) {
				t.Fatalf("round trip = %s, %v; want %s", back, err, r)
			}
			if len(out) > 1 && out[0].AllocationInfo != nil && out[0].AllocationInfo.Role == out[1].AllocationInfo.Role {
				t.Errorf("resources share one role pointer")
			}
		})
	}
}

func TestResourcesFilter(t *testing.T) {
	plain := Scalar("cpus", 1)
	allocA := resAlloc("a", Scalar("cpus", 2))
	allocAReserved := resAlloc("a", resReserve("a", Scalar("cpus", 4)))
	refined := resReserve("a/b", Scalar("cpus", 8))
	refined.Reservations = append([]mesos.Resource_ReservationInfo{{Role: resPtr("a")}}, refined.Reservations...)
	legacyStatic := resLegacyRole("a", false, Scalar("cpus", 16))
	legacyDynamic := resLegacyRole("a", true, Scalar("cpus", 32))
	star := resLegacyRole("*", false, Scalar("cpus", 64))
	all := []mesos.Resource{plain, allocA, allocAReserved, refined, legacyStatic, legacyDynamic, star}

	tests := []struct {
		name string
		keep func(mesos.Resource) bool
		want float64 // cpus kept; each entry has a distinct power of two
	}{
		{name: "unreserved", keep: Unreserved, want: 1 + 2 + 64},
		{name: "reserved", keep: Reserved, want: 4 + 8 + 16 + 32},
		{name: "role a", keep: ForRole("a"), want: 2 + 4 + 16 + 32},
		{name: "role a/b", keep: ForRole("a/b"), want: 8},
		{name: "role star", keep: ForRole("*"), want: 1 + 64},
		{name: "none", keep: ForRole("nobody"), want: 0},
		{name: "role a unreserved", keep: func(r mesos.Resource) bool { return ForRole("a")(r) && Unreserved(r) }, want: 2},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := Filter(all, tt.keep)
			if r := resMust(t, got...); r.Scalar("cpus") != tt.want {
				t.Fatalf("kept cpus:%v, want %v", r.Scalar("cpus"), tt.want)
			}
		})
	}
	if got := Filter(all, Reserved); len(got) > 0 && &got[0] == &all[2] {
		t.Fatal("Filter aliases its input")
	}
}

func resPtr[T any](v T) *T { return &v }

func TestResourcesFits(t *testing.T) {
	offer := func(rs ...mesos.Resource) mesos.Offer {
		return mesos.Offer{ID: mesos.OfferID{Value: "o1"}, Resources: rs}
	}
	tests := []struct {
		name    string
		task    []mesos.Resource
		offer   mesos.Offer
		want    bool
		wantErr string
	}{
		{name: "empty task", offer: offer(), want: true},
		{name: "duplicate task entries counted", task: []mesos.Resource{Scalar("cpus", 1), Scalar("cpus", 1)},
			offer: offer(Scalar("cpus", 1.5)), want: false},
		{name: "duplicate offer entries counted", task: []mesos.Resource{Scalar("cpus", 2)},
			offer: offer(resAlloc("a", Scalar("cpus", 1)), resAlloc("a", Scalar("cpus", 1))), want: true},
		{name: "entries of every role counted", task: []mesos.Resource{Scalar("cpus", 1.5), Scalar("cpus", 1.5)},
			offer: offer(resAlloc("a", Scalar("cpus", 1)), resAlloc("a", resReserve("a", Scalar("cpus", 2)))), want: true},
		{name: "fixed point", task: []mesos.Resource{Scalar("cpus", 0.1), Scalar("cpus", 0.2)},
			offer: offer(Scalar("cpus", 0.3)), want: true},
		{name: "ports across entries", task: []mesos.Resource{Ports(31000, 31005)},
			offer: offer(PortRange(31000, 31002), resReserve("a", PortRange(31005, 31009))), want: true},
		{name: "port missing", task: []mesos.Resource{Ports(31000, 31003)},
			offer: offer(PortRange(31000, 31002)), want: false},
		{name: "gpus missing", task: []mesos.Resource{Scalar("cpus", 1), Scalar("gpus", 1)},
			offer: offer(Scalar("cpus", 4)), want: false},
		{name: "duplicate task port", task: []mesos.Resource{Ports(31000), Ports(31000)},
			offer: offer(PortRange(31000, 31010)), wantErr: "fits: task:"},
		{name: "malformed offer", task: []mesos.Resource{Scalar("cpus", 1)},
			offer: offer(resTyped("cpus", mesos.SCALAR)), wantErr: `fits: offer "o1":`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := Fits(tt.task, tt.offer)
			if tt.wantErr != "" {
				if !errors.Is(err, ErrInvalidResources) || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("err = %v, want ErrInvalidResources containing %q", err, tt.wantErr)
				}
				return
			}
			if err != nil || got != tt.want {
				t.Fatalf("Fits = %v, %v; want %v", got, err, tt.want)
			}
		})
	}
}

func TestResourcesPickPorts(t *testing.T) {
	tests := []struct {
		name    string
		offer   []mesos.Resource
		n       int
		want    []uint64
		wantErr string
	}{
		{name: "none wanted", offer: []mesos.Resource{PortRange(1, 2)}, n: 0, want: nil},
		{name: "none wanted none offered", n: 0, want: nil},
		{name: "lowest first", offer: []mesos.Resource{PortRange(31005, 31010), PortRange(31000, 31001)}, n: 3,
			want: []uint64{31000, 31001, 31005}},
		{name: "across several ranges and roles", n: 5, offer: []mesos.Resource{
			resAlloc("a", Ranges("ports", resRange(40, 40), resRange(10, 11))), resReserve("b", PortRange(20, 21)), PortRange(30, 30),
		}, want: []uint64{10, 11, 20, 21, 30}},
		{name: "exactly all", offer: []mesos.Resource{Ranges("ports", resRange(1, 1), resRange(3, 4))}, n: 3, want: []uint64{1, 3, 4}},
		{name: "top of uint64", offer: []mesos.Resource{PortRange(math.MaxUint64-1, math.MaxUint64)}, n: 2,
			want: []uint64{math.MaxUint64 - 1, math.MaxUint64}},
		{name: "huge range", offer: []mesos.Resource{PortRange(0, math.MaxUint64)}, n: 2, want: []uint64{0, 1}},
		{name: "exhausted", offer: []mesos.Resource{Ranges("ports", resRange(1, 1), resRange(3, 4))}, n: 4,
			wantErr: "pick 4 ports: offer has 3"},
		{name: "no ports resource", offer: []mesos.Resource{Scalar("cpus", 1)}, n: 1, wantErr: "offer has 0"},
		{name: "negative", n: -1, wantErr: "negative count"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			offer := resMust(t, tt.offer...)
			got, err := PickPorts(offer, tt.n)
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("err = %v, want %q", err, tt.wantErr)
				}
				if tt.n >= 0 && !errors.Is(err, ErrNotContained) {
					t.Fatalf("err = %v, want ErrNotContained", err)
				}
				return
			}
			if err != nil || !slices.Equal(got, tt.want) {
				t.Fatalf("PickPorts = %v, %v; want %v", got, err, tt.want)
			}
			if tt.n == 0 {
				return
			}
			picked := resMust(t, Ports(got...))
			rest, err := offer.Minus(picked)
			if err != nil {
				t.Fatalf("picked ports %s not in offer: %v", picked, err)
			}
			for _, p := range got {
				if rest.Contains(resMust(t, Ports(p))) {
					t.Fatalf("port %d still in offer after Minus", p)
				}
			}
		})
	}
}

func TestResourcesBuilders(t *testing.T) {
	tests := []struct {
		name    string
		in      mesos.Resource
		want    string
		wantErr string
	}{
		{name: "scalar", in: Scalar("cpus", 0.5), want: "cpus:0.5"},
		{name: "port range", in: PortRange(31000, 31010), want: "ports:[31000-31010]"},
		{name: "ports merged", in: Ports(5, 3, 1, 2, 9), want: "ports:[1-3, 5-5, 9-9]"},
		{name: "ports at limit", in: Ports(math.MaxUint64, 0, math.MaxUint64-1), want: "ports:[0-0, 18446744073709551614-18446744073709551615]"},
		{name: "no ports", in: Ports(), want: ""},
		{name: "repeated port kept as overlap", in: Ports(7, 7), wantErr: "range [7-7] overlaps [7-7]"},
		{name: "ranges", in: Ranges("ephemeral", resRange(1, 2), resRange(3, 3)), want: "ephemeral:[1-3]"},
		{name: "set", in: Set("zones", "b", "a"), want: "zones:{a, b}"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := ResourcesOf([]mesos.Resource{tt.in})
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("err = %v, want %q", err, tt.wantErr)
				}
				return
			}
			if err != nil || got.String() != tt.want {
				t.Fatalf("got %q, %v; want %q", got, err, tt.want)
			}
		})
	}
	ports := []uint64{3, 1, 2}
	Ports(ports...)
	items := []string{"b", "a"}
	s := Set("x", items...)
	items[0] = "z"
	if !slices.Equal(ports, []uint64{3, 1, 2}) || s.Set.Item[0] != "b" {
		t.Fatal("builders alias or modify their arguments")
	}
}

// resFuzzResources decodes fuzz bytes into resources: mostly valid, of a few
// names so that they collide, with now and then a malformed one.
func resFuzzResources(data []byte) []mesos.Resource {
	names := []string{"cpus", "mem", "gpus", "ports", "zones"}
	natural := []mesos.Value_Type{mesos.SCALAR, mesos.SCALAR, mesos.SCALAR, mesos.RANGES, mesos.SET}
	var out []mesos.Resource
	for len(data) >= 3 && len(out) < 16 {
		op, x, y := data[0], data[1], data[2]
		data = data[3:]
		k := int(op) % len(names)
		name, kind := names[k], natural[k]
		if op&0x80 != 0 && op&0x40 != 0 {
			kind = mesos.Value_Type((op >> 3) & 3) // may clash, may be TEXT
		}
		var r mesos.Resource
		switch kind {
		case mesos.SCALAR:
			v := float64(uint16(x)<<8|uint16(y)) / []float64{1000, 10, 3, 1}[(op>>5)&3]
			if x == 0xff && y == 0xff {
				v = math.NaN()
			}
			r = Scalar(name, v)
		case mesos.RANGES:
			base := uint64(0)
			if op&0x20 != 0 {
				base = math.MaxUint64 - 40
			}
			begin := base + uint64(x%32)
			r = Ranges(name, resRange(begin, begin+uint64(y%8)))
			if y&0x80 != 0 && len(data) > 0 { // a second range
				begin2 := base + uint64(data[0]%40)
				r.Ranges.Range = append(r.Ranges.Range, resRange(begin2, begin2))
				data = data[1:]
			}
		case mesos.SET:
			r = Set(name, string(rune('a'+x%8)))
			if y&1 != 0 {
				r.Set.Item = append(r.Set.Item, string(rune('a'+y%8)))
			}
		default:
			r = resTyped(name, kind)
		}
		switch y % 4 {
		case 1:
			r = resAlloc("a", r)
		case 2:
			r = resReserve("b", r)
		}
		out = append(out, r)
	}
	return out
}

func FuzzResourcesPlusMinus(f *testing.F) {
	f.Add([]byte{0, 0, 100, 1, 1, 0}, []byte{0, 0, 200})
	f.Add([]byte{3, 0, 4, 3, 10, 0}, []byte{3, 5, 2})
	f.Add([]byte{4, 0, 1, 4, 2, 0}, []byte{4, 3, 1})
	f.Add([]byte{0x23, 1, 0x83, 3}, []byte{0x23, 30, 1})
	f.Add([]byte{0, 0xff, 0xff}, []byte{0xc0 | 1<<3, 0, 0})
	f.Add([]byte{3, 0, 7, 3, 10, 7, 4, 0, 1}, []byte{3, 2, 3, 4, 1, 0}) // b within a
	f.Fuzz(func(t *testing.T, da, db []byte) {
		ra, rb := resFuzzResources(da), resFuzzResources(db)
		a, errA := ResourcesOf(ra)
		b, errB := ResourcesOf(rb)
		if errA != nil {
			if !errors.Is(errA, ErrInvalidResources) {
				t.Fatalf("ResourcesOf error %v does not wrap ErrInvalidResources", errA)
			}
			return
		}
		back, err := ResourcesOf(a.ToProto("r"))
		if err != nil || !back.Equal(a) {
			t.Fatalf("ToProto round trip of %s = %s, %v", a, back, err)
		}
		if !a.Contains(a) {
			t.Fatalf("%s does not contain itself", a)
		}
		if d, err := a.Minus(a); err != nil || !d.IsEmpty() {
			t.Fatalf("%s - itself = %s, %v", a, d, err)
		}
		if errB != nil {
			return
		}

		sum, err := a.Plus(b)
		if all, errAll := ResourcesOf(append(slices.Clone(ra), rb...)); errAll == nil {
			if err != nil || !all.Equal(sum) {
				t.Fatalf("ResourcesOf(a and b) = %s but %s + %s = %s, %v", all, a, b, sum, err)
			}
		}
		if err != nil {
			if !errors.Is(err, ErrInvalidResources) {
				t.Fatalf("Plus error %v does not wrap ErrInvalidResources", err)
			}
		} else {
			if rev, err := b.Plus(a); err != nil || !rev.Equal(sum) {
				t.Fatalf("Plus not commutative: %s vs %s, %v", sum, rev, err)
			}
			if !sum.Contains(a) || !sum.Contains(b) {
				t.Fatalf("%s does not contain its terms %s and %s", sum, a, b)
			}
			if got, err := sum.Minus(b); err != nil || !got.Equal(a) {
				t.Fatalf("(%s + %s) - b = %s, %v", a, b, got, err)
			}
			if got, err := sum.Minus(a); err != nil || !got.Equal(b) {
				t.Fatalf("(%s + %s) - a = %s, %v", a, b, got, err)
			}
		}

		diff, err := a.Minus(b)
		if a.Contains(b) != (err == nil) {
			t.Fatalf("Contains(%s, %s) = %v but Minus err = %v", a, b, a.Contains(b), err)
		}
		if err != nil {
			if !errors.Is(err, ErrNotContained) {
				t.Fatalf("Minus error %v does not wrap ErrNotContained", err)
			}
			return
		}
		if !a.Contains(diff) {
			t.Fatalf("%s does not contain %s - %s = %s", a, a, b, diff)
		}
		if got, err := diff.Plus(b); err != nil || !got.Equal(a) {
			t.Fatalf("(%s - %s) + b = %s, %v", a, b, got, err)
		}
	})
}

func FuzzResourcesOfProto(f *testing.F) {
	seeds := []mesos.Offer{
		{Resources: []mesos.Resource{Scalar("cpus", 1), PortRange(1, 5), Set("z", "a")}},
		{Resources: []mesos.Resource{resAlloc("a", Scalar("cpus", 1)), resReserve("a", Scalar("cpus", 0.5))}},
		{Resources: []mesos.Resource{resTyped("cpus", mesos.SCALAR), Scalar("mem", math.NaN())}},
		{Resources: []mesos.Resource{resTyped("x", mesos.Value_Type(9))}},
	}
	for _, o := range seeds {
		data, err := o.Marshal()
		if err != nil {
			f.Fatal(err)
		}
		f.Add(data)
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		var o mesos.Offer
		if o.Unmarshal(data) != nil {
			return
		}
		r, err := ResourcesOf(o.Resources)
		if _, ferr := Fits(o.Resources, o); (err == nil) != (ferr == nil) {
			t.Fatalf("ResourcesOf err %v, Fits err %v", err, ferr)
		}
		if err != nil {
			if !errors.Is(err, ErrInvalidResources) {
				t.Fatalf("error %v does not wrap ErrInvalidResources", err)
			}
			return
		}
		if back, err := ResourcesOf(r.ToProto("r")); err != nil || !back.Equal(r) {
			t.Fatalf("round trip of %s = %s, %v", r, back, err)
		}
		_ = r.String()
		_, _ = PickPorts(r, 3)
	})
}

// BenchmarkResourcesFits measures a typical offer (four scalars, one port
// range, allocated to a role) against a task, beside mesos-go's ContainsAll
// as the baseline in the same run.
func BenchmarkResourcesFits(b *testing.B) {
	offer := mesos.Offer{ID: mesos.OfferID{Value: "o1"}, Resources: []mesos.Resource{
		resAlloc("web", Scalar("cpus", 8)), resAlloc("web", Scalar("mem", 32768)),
		resAlloc("web", Scalar("disk", 100000)), resAlloc("web", Scalar("gpus", 2)),
		resAlloc("web", PortRange(31000, 32000)),
	}}
	task := resMust(b, Scalar("cpus", 0.5), Scalar("mem", 512), Scalar("disk", 1024), Ports(31000, 31001)).ToProto("web")

	b.Run("ResourcesOf", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			if _, err := ResourcesOf(offer.Resources); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("Fits", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			if ok, err := Fits(task, offer); !ok || err != nil {
				b.Fatal(ok, err)
			}
		}
	})
	b.Run("ResourcesOf+Contains", func(b *testing.B) {
		b.ReportAllocs()
		need := resMust(b, task...)
		for b.Loop() {
			have, err := ResourcesOf(offer.Resources)
			if err != nil || !have.Contains(need) {
				b.Fatal(err)
			}
		}
	})
	b.Run("mesos-go-ContainsAll", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			if !mesosresources.ContainsAll(offer.Resources, task) {
				b.Fatal("baseline: task does not fit")
			}
		}
	})
}
