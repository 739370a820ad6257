package mesossim

import (
	"fmt"
	"math"
	"sort"
	"strings"

	mesos "github.com/mesos/mesos-go/api/v1/lib"
)

// pool is a bag of resources keyed by name, the way the master's sorter sees
// them for one role: every entry of a name is summed, whatever its role,
// reservation or allocation info. Scalars are fixed-point with three decimals,
// as in Mesos, so sums never drift.
type pool struct {
	scalars map[string]int64      // milli-units
	ranges  map[string][]valRange // sorted, disjoint, non-adjacent
	sets    map[string]map[string]struct{}
}

type valRange struct{ begin, end uint64 }

func newPool() pool {
	return pool{scalars: map[string]int64{}, ranges: map[string][]valRange{}, sets: map[string]map[string]struct{}{}}
}

// toMilli converts a scalar to Mesos' fixed-point representation.
func toMilli(v float64) int64 { return int64(math.Round(v * 1000)) }

func fromMilli(m int64) float64 { return float64(m) / 1000 }

// poolOf validates and sums resources. It rejects what a real master's
// resource validation rejects: empty names, missing or mismatched values,
// negative or non-finite scalars, inverted or overlapping ranges.
func poolOf(rs []mesos.Resource) (pool, error) {
	p := newPool()
	for i := range rs {
		r := &rs[i]
		if r.Name == "" {
			return pool{}, fmt.Errorf("resource %d has no name", i)
		}
		if r.Type == nil {
			return pool{}, fmt.Errorf("resource %q has no type", r.Name)
		}
		switch *r.Type {
		case mesos.SCALAR:
			if r.Scalar == nil || r.Ranges != nil || r.Set != nil {
				return pool{}, fmt.Errorf("resource %q is SCALAR but carries no scalar value", r.Name)
			}
			v := r.Scalar.Value
			if math.IsNaN(v) || math.IsInf(v, 0) || v < 0 {
				return pool{}, fmt.Errorf("resource %q has invalid scalar %v", r.Name, v)
			}
			p.scalars[r.Name] += toMilli(v)
		case mesos.RANGES:
			if r.Ranges == nil || r.Scalar != nil || r.Set != nil {
				return pool{}, fmt.Errorf("resource %q is RANGES but carries no ranges", r.Name)
			}
			var add []valRange
			for _, rg := range r.Ranges.Range {
				if rg.Begin > rg.End {
					return pool{}, fmt.Errorf("resource %q has inverted range [%d-%d]", r.Name, rg.Begin, rg.End)
				}
				add = append(add, valRange{rg.Begin, rg.End})
			}
			merged, overlap := mergeRanges(p.ranges[r.Name], add)
			if overlap {
				return pool{}, fmt.Errorf("resource %q has overlapping ranges", r.Name)
			}
			p.ranges[r.Name] = merged
		case mesos.SET:
			if r.Set == nil || r.Scalar != nil || r.Ranges != nil {
				return pool{}, fmt.Errorf("resource %q is SET but carries no set", r.Name)
			}
			s := p.sets[r.Name]
			if s == nil {
				s = map[string]struct{}{}
				p.sets[r.Name] = s
			}
			for _, it := range r.Set.Item {
				if _, dup := s[it]; dup {
					return pool{}, fmt.Errorf("resource %q has duplicate set item %q", r.Name, it)
				}
				s[it] = struct{}{}
			}
		default:
			return pool{}, fmt.Errorf("resource %q has unsupported type %v", r.Name, *r.Type)
		}
	}
	for k, v := range p.scalars {
		if v == 0 { // below Mesos' precision of 0.001: nothing
			delete(p.scalars, k)
		}
	}
	return p, nil
}

// mergeRanges returns the union of a and b normalised, and whether any
// value appeared in both.
func mergeRanges(a, b []valRange) ([]valRange, bool) {
	all := make([]valRange, 0, len(a)+len(b))
	all = append(all, a...)
	all = append(all, b...)
	sort.Slice(all, func(i, j int) bool { return all[i].begin < all[j].begin })
	overlap := false
	out := all[:0:0]
	for _, r := range all {
		if n := len(out); n > 0 {
			last := &out[n-1]
			if r.begin <= last.end {
				overlap = true
			}
			if r.begin <= last.end+1 {
				if r.end > last.end {
					last.end = r.end
				}
				continue
			}
		}
		out = append(out, r)
	}
	return out, overlap
}

// subtractRanges returns a minus b; ok is false when b is not inside a.
func subtractRanges(a, b []valRange) ([]valRange, bool) {
	out := append([]valRange(nil), a...)
	for _, r := range b {
		found := false
		for i := range out {
			o := out[i]
			if r.begin >= o.begin && r.end <= o.end {
				found = true
				var repl []valRange
				if o.begin < r.begin {
					repl = append(repl, valRange{o.begin, r.begin - 1})
				}
				if r.end < o.end {
					repl = append(repl, valRange{r.end + 1, o.end})
				}
				out = append(out[:i], append(repl, out[i+1:]...)...)
				break
			}
		}
		if !found {
			return nil, false
		}
	}
	return out, true
}

func (p pool) clone() pool {
	q := newPool()
	for k, v := range p.scalars {
		q.scalars[k] = v
	}
	for k, v := range p.ranges {
		q.ranges[k] = append([]valRange(nil), v...)
	}
	for k, v := range p.sets {
		s := make(map[string]struct{}, len(v))
		for it := range v {
			s[it] = struct{}{}
		}
		q.sets[k] = s
	}
	return q
}

// contains reports whether every resource in q is also in p.
func (p pool) contains(q pool) bool {
	for k, v := range q.scalars {
		if v > p.scalars[k] {
			return false
		}
	}
	for k, v := range q.ranges {
		if _, ok := subtractRanges(p.ranges[k], v); !ok {
			return false
		}
	}
	for k, v := range q.sets {
		have := p.sets[k]
		for it := range v {
			if _, ok := have[it]; !ok {
				return false
			}
		}
	}
	return true
}

// sub removes q from p; the caller has checked p.contains(q).
func (p *pool) sub(q pool) {
	for k, v := range q.scalars {
		p.scalars[k] -= v
		if p.scalars[k] == 0 {
			delete(p.scalars, k)
		}
	}
	for k, v := range q.ranges {
		rest, _ := subtractRanges(p.ranges[k], v)
		if len(rest) == 0 {
			delete(p.ranges, k)
		} else {
			p.ranges[k] = rest
		}
	}
	for k, v := range q.sets {
		for it := range v {
			delete(p.sets[k], it)
		}
		if len(p.sets[k]) == 0 {
			delete(p.sets, k)
		}
	}
}

// add puts q into p.
func (p *pool) add(q pool) {
	for k, v := range q.scalars {
		if v != 0 {
			p.scalars[k] += v
		}
	}
	for k, v := range q.ranges {
		p.ranges[k], _ = mergeRanges(p.ranges[k], v)
	}
	for k, v := range q.sets {
		s := p.sets[k]
		if s == nil {
			s = map[string]struct{}{}
			p.sets[k] = s
		}
		for it := range v {
			s[it] = struct{}{}
		}
	}
}

func (p pool) empty() bool {
	for _, v := range p.scalars {
		if v > 0 {
			return false
		}
	}
	for _, v := range p.ranges {
		if len(v) > 0 {
			return false
		}
	}
	for _, v := range p.sets {
		if len(v) > 0 {
			return false
		}
	}
	return true
}

// resources renders the pool as Mesos resources allocated to role, in a
// stable order (scalars, ranges, sets; each by name).
func (p pool) resources(role string) []mesos.Resource {
	var out []mesos.Resource
	alloc := func() *mesos.Resource_AllocationInfo {
		if role == "" {
			return nil
		}
		r := role
		return &mesos.Resource_AllocationInfo{Role: &r}
	}
	for _, k := range sortedKeys(p.scalars) {
		if p.scalars[k] <= 0 {
			continue
		}
		out = append(out, mesos.Resource{Name: k, Type: mesos.SCALAR.Enum(),
			Scalar: &mesos.Value_Scalar{Value: fromMilli(p.scalars[k])}, AllocationInfo: alloc()})
	}
	for _, k := range sortedKeys(p.ranges) {
		rs := p.ranges[k]
		if len(rs) == 0 {
			continue
		}
		vr := make([]mesos.Value_Range, len(rs))
		for i, r := range rs {
			vr[i] = mesos.Value_Range{Begin: r.begin, End: r.end}
		}
		out = append(out, mesos.Resource{Name: k, Type: mesos.RANGES.Enum(),
			Ranges: &mesos.Value_Ranges{Range: vr}, AllocationInfo: alloc()})
	}
	for _, k := range sortedKeys(p.sets) {
		s := p.sets[k]
		if len(s) == 0 {
			continue
		}
		items := make([]string, 0, len(s))
		for it := range s {
			items = append(items, it)
		}
		sort.Strings(items)
		out = append(out, mesos.Resource{Name: k, Type: mesos.SET.Enum(),
			Set: &mesos.Value_Set{Item: items}, AllocationInfo: alloc()})
	}
	return out
}

// String renders the pool like Mesos does in messages: "cpus:1;mem:128;ports:[31000-31001]".
func (p pool) String() string {
	var parts []string
	for _, k := range sortedKeys(p.scalars) {
		parts = append(parts, fmt.Sprintf("%s:%g", k, fromMilli(p.scalars[k])))
	}
	for _, k := range sortedKeys(p.ranges) {
		var rs []string
		for _, r := range p.ranges[k] {
			rs = append(rs, fmt.Sprintf("%d-%d", r.begin, r.end))
		}
		parts = append(parts, fmt.Sprintf("%s:[%s]", k, strings.Join(rs, ", ")))
	}
	for _, k := range sortedKeys(p.sets) {
		var items []string
		for it := range p.sets[k] {
			items = append(items, it)
		}
		sort.Strings(items)
		parts = append(parts, fmt.Sprintf("%s:{%s}", k, strings.Join(items, ", ")))
	}
	return strings.Join(parts, ";")
}

func sortedKeys[V any](m map[string]V) []string {
	ks := make([]string, 0, len(m))
	for k := range m {
		ks = append(ks, k)
	}
	sort.Strings(ks)
	return ks
}
