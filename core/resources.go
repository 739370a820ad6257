package core

import (
	"cmp"
	"errors"
	"fmt"
	"math"
	"slices"
	"strconv"
	"strings"

	mesos "github.com/mesos/mesos-go/api/v1/lib"
)

// ErrInvalidResources is wrapped by every error about malformed resources:
// entries that Mesos itself would reject, entries whose types disagree, and
// sums that would count one port or set item twice.
var ErrInvalidResources = errors.New("invalid resources")

// ErrNotContained is wrapped by errors reporting that a request asks for more
// than is available: Minus of something not contained, PickPorts without
// enough free ports.
var ErrNotContained = errors.New("resources not contained")

// maxScalarMilli bounds a scalar, in thousandths. 1e15 thousandths (10^12
// units, an exabyte of MB) keeps every value exact in a float64 and the
// float -> fixed -> float round trip lossless.
const maxScalarMilli = int64(1e15)

// Resources is an immutable sum of Mesos resources, keyed by resource name.
//
// Every entry of a name is counted, whatever its role, reservation,
// allocation info, disk or revocable info: two "cpus" entries of 1 each sum
// to 2. Scalars are fixed point with three decimals, as in Mesos, so
// 0.1+0.2 is exactly 0.3. Ranges are kept sorted and merged; set items
// sorted. A port or set item may be present only once: offering it in two
// entries is an error, never silently collapsed.
//
// The identity of entries (roles, reservations, …) is not kept. To fit a
// task against part of an offer only, select the entries first with Filter
// (for example Filter(offer.Resources, Unreserved)).
//
// The zero value is empty and ready to use. Methods never modify their
// receiver or arguments, so Resources may be copied and shared freely.
type Resources struct {
	entries []resEntry // sorted by name, names unique, none empty
}

// resEntry is the sum of all resources of one name.
type resEntry struct {
	name   string
	kind   mesos.Value_Type
	milli  int64               // SCALAR: value in thousandths
	ranges []mesos.Value_Range // RANGES: sorted, disjoint, non-adjacent
	items  []string            // SET: sorted, unique
}

func (e resEntry) empty() bool {
	switch e.kind {
	case mesos.SCALAR:
		return e.milli == 0
	case mesos.RANGES:
		return len(e.ranges) == 0
	default:
		return len(e.items) == 0
	}
}

// ResourcesOf validates rs and sums all of its entries by name. It reports
// (wrapping ErrInvalidResources, and naming the offending entry by index and
// name) entries without a name or type, a type other than SCALAR, RANGES or
// SET, a value that does not match the type, a scalar that is NaN, infinite,
// negative or above 10^12, a range with begin > end, overlapping ranges or
// repeated set items among all entries of a name, and names used with two
// types.
func ResourcesOf(rs []mesos.Resource) (Resources, error) {
	b := resBuilder{rs: rs, entries: make([]resEntry, 0, len(rs))}
	for i := range rs {
		if err := b.add(i); err != nil {
			return Resources{}, err
		}
	}
	return b.finish()
}

// resBuilder sums resources by name for ResourcesOf. Scalars are summed as
// they come; ranges and set items of all entries are collected, tagged with
// their name and source entry, and sorted once at the end to find overlaps
// and merge.
type resBuilder struct {
	rs      []mesos.Resource
	entries []resEntry // sorted by name
	ranges  []taggedRange
	items   []taggedItem
}

type taggedRange struct {
	mesos.Value_Range
	name string
	src  int
}

type taggedItem struct {
	item, name string
	src        int
}

func invalidResource(i int, name, format string, args ...any) error {
	return fmt.Errorf("%w: resource %d %q: %s", ErrInvalidResources, i, name, fmt.Sprintf(format, args...))
}

func (b *resBuilder) add(i int) error {
	r := &b.rs[i]
	if r.Name == "" {
		return invalidResource(i, r.Name, "empty name")
	}
	if r.Type == nil {
		return invalidResource(i, r.Name, "no type")
	}
	kind := *r.Type
	if err := checkResourceValue(i, r, kind); err != nil {
		return err
	}
	j, found := findEntry(b.entries, r.Name)
	if !found {
		b.entries = slices.Insert(b.entries, j, resEntry{name: r.Name, kind: kind})
	}
	e := &b.entries[j]
	if e.kind != kind {
		first := 0
		for b.rs[first].Name != r.Name {
			first++
		}
		return invalidResource(i, r.Name, "type %s conflicts with type %s of resource %d", kind, e.kind, first)
	}
	switch kind {
	case mesos.SCALAR:
		v := r.Scalar.Value
		if math.IsNaN(v) || math.IsInf(v, 0) {
			return invalidResource(i, r.Name, "scalar %v is not finite", v)
		}
		if v < 0 {
			return invalidResource(i, r.Name, "scalar %v is negative", v)
		}
		m := math.Round(v * 1000)
		if m > float64(maxScalarMilli) || e.milli+int64(m) > maxScalarMilli {
			return invalidResource(i, r.Name, "scalar total exceeds %d", maxScalarMilli/1000)
		}
		e.milli += int64(m)
	case mesos.RANGES:
		for _, rg := range r.Ranges.Range {
			if rg.Begin > rg.End {
				return invalidResource(i, r.Name, "range [%d-%d] has begin > end", rg.Begin, rg.End)
			}
			b.ranges = append(b.ranges, taggedRange{rg, r.Name, i})
		}
	case mesos.SET:
		for _, it := range r.Set.Item {
			b.items = append(b.items, taggedItem{it, r.Name, i})
		}
	}
	return nil
}

// checkResourceValue verifies that r carries exactly the value its type calls for.
func checkResourceValue(i int, r *mesos.Resource, kind mesos.Value_Type) error {
	var ok bool
	switch kind {
	case mesos.SCALAR:
		ok = r.Scalar != nil && r.Ranges == nil && r.Set == nil
	case mesos.RANGES:
		ok = r.Scalar == nil && r.Ranges != nil && r.Set == nil
	case mesos.SET:
		ok = r.Scalar == nil && r.Ranges == nil && r.Set != nil
	case mesos.TEXT:
		return invalidResource(i, r.Name, "type TEXT is not a resource type")
	default:
		return invalidResource(i, r.Name, "unknown type %d", int32(kind))
	}
	if !ok {
		return invalidResource(i, r.Name, "type %s needs exactly a %s value", kind, strings.ToLower(kind.String()))
	}
	return nil
}

func (b *resBuilder) finish() (Resources, error) {
	if err := b.normaliseRanges(); err != nil {
		return Resources{}, err
	}
	if err := b.normaliseItems(); err != nil {
		return Resources{}, err
	}
	return Resources{entries: slices.DeleteFunc(b.entries, resEntry.empty)}, nil
}

// normaliseRanges sorts the collected ranges, rejects overlaps and gives each
// entry its merged ranges, all sharing one backing array.
func (b *resBuilder) normaliseRanges() error {
	ts := b.ranges
	slices.SortFunc(ts, func(x, y taggedRange) int {
		return cmp.Or(strings.Compare(x.name, y.name), cmp.Compare(x.Begin, y.Begin), cmp.Compare(x.End, y.End))
	})
	norm := make([]mesos.Value_Range, 0, len(ts))
	for k := 0; k < len(ts); {
		name, first := ts[k].name, len(norm)
		norm = append(norm, ts[k].Value_Range)
		for k++; k < len(ts) && ts[k].name == name; k++ {
			t, prev := ts[k], ts[k-1]
			if t.Begin <= prev.End {
				return invalidResource(t.src, name, "range [%d-%d] overlaps [%d-%d] of %s",
					t.Begin, t.End, prev.Begin, prev.End, whichResource(t.src, prev.src))
			}
			if last := &norm[len(norm)-1]; t.Begin == last.End+1 { // no wrap: t.Begin > last.End
				last.End = t.End
			} else {
				norm = append(norm, t.Value_Range)
			}
		}
		j, _ := findEntry(b.entries, name)
		b.entries[j].ranges = norm[first:len(norm):len(norm)]
	}
	return nil
}

// normaliseItems sorts the collected set items, rejects repeats and gives
// each entry its items, all sharing one backing array.
func (b *resBuilder) normaliseItems() error {
	ts := b.items
	slices.SortFunc(ts, func(x, y taggedItem) int {
		return cmp.Or(strings.Compare(x.name, y.name), strings.Compare(x.item, y.item))
	})
	norm := make([]string, 0, len(ts))
	for k := 0; k < len(ts); {
		name, first := ts[k].name, len(norm)
		norm = append(norm, ts[k].item)
		for k++; k < len(ts) && ts[k].name == name; k++ {
			t, prev := ts[k], ts[k-1]
			if t.item == prev.item {
				return invalidResource(t.src, name, "item %q repeats an item of %s", t.item, whichResource(t.src, prev.src))
			}
			norm = append(norm, t.item)
		}
		j, _ := findEntry(b.entries, name)
		b.entries[j].items = norm[first:len(norm):len(norm)]
	}
	return nil
}

func whichResource(src, other int) string {
	if src == other {
		return "the same resource"
	}
	return "resource " + strconv.Itoa(other)
}

// findEntry returns where name is, or would be inserted, in sorted entries.
func findEntry(entries []resEntry, name string) (int, bool) {
	lo, hi := 0, len(entries)
	for lo < hi {
		if m := int(uint(lo+hi) >> 1); entries[m].name < name {
			lo = m + 1
		} else {
			hi = m
		}
	}
	return lo, lo < len(entries) && entries[lo].name == name
}

func (r Resources) find(name string) *resEntry {
	j, ok := findEntry(r.entries, name)
	if !ok {
		return nil
	}
	return &r.entries[j]
}

// Scalar returns the total of the scalar resource name, or 0 if there is none.
func (r Resources) Scalar(name string) float64 {
	e := r.find(name)
	if e == nil || e.kind != mesos.SCALAR {
		return 0
	}
	return float64(e.milli) / 1000
}

// Ranges returns the ranges of the resource name, sorted, with adjacent
// ranges merged, or nil if there are none. The slice is a copy.
func (r Resources) Ranges(name string) []mesos.Value_Range {
	e := r.find(name)
	if e == nil || e.kind != mesos.RANGES {
		return nil
	}
	return slices.Clone(e.ranges)
}

// Set returns the sorted items of the set resource name, or nil if there are
// none. The slice is a copy.
func (r Resources) Set(name string) []string {
	e := r.find(name)
	if e == nil || e.kind != mesos.SET {
		return nil
	}
	return slices.Clone(e.items)
}

// IsEmpty reports whether r holds nothing: no non-zero scalar, no range, no
// set item.
func (r Resources) IsEmpty() bool { return len(r.entries) == 0 }

// Equal reports whether r and other hold exactly the same resources.
func (r Resources) Equal(other Resources) bool {
	return slices.EqualFunc(r.entries, other.entries, func(x, y resEntry) bool {
		return x.name == y.name && x.kind == y.kind && x.milli == y.milli &&
			slices.Equal(x.ranges, y.ranges) && slices.Equal(x.items, y.items)
	})
}

// Contains reports whether r holds at least other: every scalar at least as
// large, every range and set item present, under the same name and type.
func (r Resources) Contains(other Resources) bool {
	for j := range other.entries {
		y := &other.entries[j]
		x := r.find(y.name)
		if x == nil || x.kind != y.kind {
			return false
		}
		switch y.kind {
		case mesos.SCALAR:
			if x.milli < y.milli {
				return false
			}
		case mesos.RANGES:
			if !rangesContain(x.ranges, y.ranges) {
				return false
			}
		case mesos.SET:
			if !itemsContain(x.items, y.items) {
				return false
			}
		}
	}
	return true
}

// Plus returns the sum of r and other. It fails, wrapping
// ErrInvalidResources, if a name has different types in the two, if a port
// or set item is in both (it would be counted twice), or if a scalar would
// exceed 10^12.
func (r Resources) Plus(other Resources) (Resources, error) {
	return r.merge(other, addResEntries, func(y *resEntry) (resEntry, error) { return *y, nil })
}

// Minus returns r less other. It fails, wrapping ErrNotContained and naming
// the resource, unless r contains other.
func (r Resources) Minus(other Resources) (Resources, error) {
	return r.merge(other, subResEntries, func(y *resEntry) (resEntry, error) {
		return resEntry{}, fmt.Errorf("minus %q: %w", y.name, ErrNotContained)
	})
}

// merge walks the sorted entries of r and other together, combining entries
// present in both with both and passing entries only in other to onlyOther.
func (r Resources) merge(other Resources, both func(x, y *resEntry) (resEntry, error),
	onlyOther func(y *resEntry) (resEntry, error)) (Resources, error) {
	out := make([]resEntry, 0, len(r.entries)+len(other.entries))
	i, j := 0, 0
	for i < len(r.entries) || j < len(other.entries) {
		var (
			e   resEntry
			err error
		)
		switch {
		case j == len(other.entries) || (i < len(r.entries) && r.entries[i].name < other.entries[j].name):
			e = r.entries[i]
			i++
		case i == len(r.entries) || other.entries[j].name < r.entries[i].name:
			e, err = onlyOther(&other.entries[j])
			j++
		default:
			e, err = both(&r.entries[i], &other.entries[j])
			i++
			j++
		}
		if err != nil {
			return Resources{}, err
		}
		if !e.empty() {
			out = append(out, e)
		}
	}
	return Resources{entries: out}, nil
}

func addResEntries(x, y *resEntry) (resEntry, error) {
	if x.kind != y.kind {
		return resEntry{}, fmt.Errorf("%w: plus %q: type %s conflicts with %s", ErrInvalidResources, x.name, y.kind, x.kind)
	}
	e := resEntry{name: x.name, kind: x.kind}
	switch x.kind {
	case mesos.SCALAR:
		if x.milli+y.milli > maxScalarMilli {
			return resEntry{}, fmt.Errorf("%w: plus %q: total exceeds %d", ErrInvalidResources, x.name, maxScalarMilli/1000)
		}
		e.milli = x.milli + y.milli
	case mesos.RANGES:
		rs, clash, ok := unionRanges(x.ranges, y.ranges)
		if !ok {
			return resEntry{}, fmt.Errorf("%w: plus %q: range [%d-%d] is in both", ErrInvalidResources, x.name, clash.Begin, clash.End)
		}
		e.ranges = rs
	case mesos.SET:
		items, clash, ok := unionItems(x.items, y.items)
		if !ok {
			return resEntry{}, fmt.Errorf("%w: plus %q: item %q is in both", ErrInvalidResources, x.name, clash)
		}
		e.items = items
	}
	return e, nil
}

func subResEntries(x, y *resEntry) (resEntry, error) {
	e := resEntry{name: x.name, kind: x.kind}
	ok := x.kind == y.kind
	switch {
	case !ok:
	case x.kind == mesos.SCALAR:
		ok = x.milli >= y.milli
		e.milli = x.milli - y.milli
	case x.kind == mesos.RANGES:
		if ok = rangesContain(x.ranges, y.ranges); ok {
			e.ranges = subtractRanges(x.ranges, y.ranges)
		}
	case x.kind == mesos.SET:
		if ok = itemsContain(x.items, y.items); ok {
			e.items = subtractItems(x.items, y.items)
		}
	}
	if !ok {
		return resEntry{}, fmt.Errorf("minus %q: %w", x.name, ErrNotContained)
	}
	return e, nil
}

// rangesContain reports whether every range of b lies within a. Both are
// normalised, so each range of b must lie within a single range of a.
func rangesContain(a, b []mesos.Value_Range) bool {
	i := 0
	for _, y := range b {
		for i < len(a) && a[i].End < y.Begin {
			i++
		}
		if i == len(a) || a[i].Begin > y.Begin || a[i].End < y.End {
			return false
		}
	}
	return true
}

// unionRanges merges two normalised range lists. If they share values it
// returns ok=false and a range of shared values.
func unionRanges(a, b []mesos.Value_Range) (out []mesos.Value_Range, clash mesos.Value_Range, ok bool) {
	out = make([]mesos.Value_Range, 0, len(a)+len(b))
	i, j := 0, 0
	for i < len(a) || j < len(b) {
		var next mesos.Value_Range
		if j == len(b) || (i < len(a) && a[i].Begin < b[j].Begin) {
			next = a[i]
			i++
		} else {
			next = b[j]
			j++
		}
		if n := len(out); n > 0 {
			last := &out[n-1]
			if next.Begin <= last.End {
				// Each list is disjoint, so these values are in both.
				return nil, mesos.Value_Range{Begin: next.Begin, End: min(next.End, last.End)}, false
			}
			if next.Begin == last.End+1 {
				last.End = next.End
				continue
			}
		}
		out = append(out, next)
	}
	return out, mesos.Value_Range{}, true
}

// subtractRanges returns a less b, where b is contained in a.
func subtractRanges(a, b []mesos.Value_Range) []mesos.Value_Range {
	out := make([]mesos.Value_Range, 0, len(a)+len(b))
	j := 0
	for _, x := range a {
		cur, whole := x, true
		for ; j < len(b) && b[j].End <= x.End; j++ {
			y := b[j]
			if y.Begin > cur.Begin {
				out = append(out, mesos.Value_Range{Begin: cur.Begin, End: y.Begin - 1})
			}
			if y.End == x.End {
				whole = false
				j++
				break
			}
			cur.Begin = y.End + 1
		}
		if whole {
			out = append(out, cur)
		}
	}
	return out
}

func itemsContain(a, b []string) bool {
	i := 0
	for _, y := range b {
		for i < len(a) && a[i] < y {
			i++
		}
		if i == len(a) || a[i] != y {
			return false
		}
	}
	return true
}

func unionItems(a, b []string) (out []string, clash string, ok bool) {
	out = make([]string, 0, len(a)+len(b))
	i, j := 0, 0
	for i < len(a) || j < len(b) {
		switch {
		case j == len(b) || (i < len(a) && a[i] < b[j]):
			out = append(out, a[i])
			i++
		case i == len(a) || b[j] < a[i]:
			out = append(out, b[j])
			j++
		default:
			return nil, a[i], false
		}
	}
	return out, "", true
}

func subtractItems(a, b []string) []string {
	out := make([]string, 0, len(a))
	j := 0
	for _, x := range a {
		if j < len(b) && b[j] == x {
			j++
			continue
		}
		out = append(out, x)
	}
	return out
}

// String renders r as Mesos does, names in order:
// "cpus:1.5;mem:128;ports:[31000-31001, 32000-32000];zones:{a, b}".
func (r Resources) String() string {
	var sb strings.Builder
	for j := range r.entries {
		e := &r.entries[j]
		if j > 0 {
			sb.WriteByte(';')
		}
		sb.WriteString(e.name)
		sb.WriteByte(':')
		switch e.kind {
		case mesos.SCALAR:
			sb.WriteString(strconv.FormatFloat(float64(e.milli)/1000, 'f', -1, 64))
		case mesos.RANGES:
			sb.WriteByte('[')
			for k, rg := range e.ranges {
				if k > 0 {
					sb.WriteString(", ")
				}
				sb.WriteString(strconv.FormatUint(rg.Begin, 10))
				sb.WriteByte('-')
				sb.WriteString(strconv.FormatUint(rg.End, 10))
			}
			sb.WriteByte(']')
		case mesos.SET:
			sb.WriteString("{" + strings.Join(e.items, ", ") + "}")
		}
	}
	return sb.String()
}

// ToProto renders r as one unreserved Mesos resource per name, in name order.
// If role is not empty every resource carries allocation_info with that
// role, as a MULTI_ROLE framework must set on task resources launched against
// an offer made to role; pass the offer's allocation role. ResourcesOf of the
// result equals r.
func (r Resources) ToProto(role string) []mesos.Resource {
	out := make([]mesos.Resource, 0, len(r.entries))
	for j := range r.entries {
		e := &r.entries[j]
		res := mesos.Resource{Name: e.name, Type: e.kind.Enum()}
		switch e.kind {
		case mesos.SCALAR:
			res.Scalar = &mesos.Value_Scalar{Value: float64(e.milli) / 1000}
		case mesos.RANGES:
			res.Ranges = &mesos.Value_Ranges{Range: slices.Clone(e.ranges)}
		case mesos.SET:
			res.Set = &mesos.Value_Set{Item: slices.Clone(e.items)}
		}
		if role != "" {
			role := role // each resource gets its own copy
			res.AllocationInfo = &mesos.Resource_AllocationInfo{Role: &role}
		}
		out = append(out, res)
	}
	return out
}

// Fits reports whether task's resources fit in offer's, counting every entry
// of both (duplicates and entries of any role or reservation included). It
// fails if either side is malformed. To fit against only some of the offer,
// such as its unreserved part, Filter offer.Resources first. In a loop over
// many offers, build the task's Resources once and use Contains.
func Fits(task []mesos.Resource, offer mesos.Offer) (bool, error) {
	need, err := ResourcesOf(task)
	if err != nil {
		return false, fmt.Errorf("fits: task: %w", err)
	}
	have, err := ResourcesOf(offer.Resources)
	if err != nil {
		return false, fmt.Errorf("fits: offer %q: %w", offer.ID.Value, err)
	}
	return have.Contains(need), nil
}

// PickPorts returns the n lowest ports of offer's "ports" resource, in
// increasing order; Ports builds the task's resource from them. It fails,
// wrapping ErrNotContained, if offer has fewer than n ports.
func PickPorts(offer Resources, n int) ([]uint64, error) {
	if n < 0 {
		return nil, fmt.Errorf("pick ports: negative count %d", n)
	}
	var ranges []mesos.Value_Range
	if e := offer.find("ports"); e != nil && e.kind == mesos.RANGES {
		ranges = e.ranges
	}
	var have uint64 // saturates at n
	for _, rg := range ranges {
		if have += min(rg.End-rg.Begin, uint64(n)) + 1; have >= uint64(n) {
			break
		}
	}
	if have < uint64(n) {
		return nil, fmt.Errorf("pick %d ports: offer has %d: %w", n, have, ErrNotContained)
	}
	if n == 0 {
		return nil, nil
	}
	out := make([]uint64, 0, n)
	for _, rg := range ranges {
		for p := rg.Begin; ; p++ {
			out = append(out, p)
			if len(out) == n {
				return out, nil
			}
			if p == rg.End {
				break
			}
		}
	}
	return out, nil // unreachable: have >= n
}

// Filter returns the entries of rs for which keep is true, in a new slice
// (the entries' pointer fields are shared with rs).
func Filter(rs []mesos.Resource, keep func(mesos.Resource) bool) []mesos.Resource {
	var out []mesos.Resource
	for i := range rs {
		if keep(rs[i]) {
			out = append(out, rs[i])
		}
	}
	return out
}

// ForRole returns a Filter predicate selecting resources of role: those
// whose allocation_info.role is role or, lacking allocation info, whose
// reservation role (the last of the reservations stack, else the legacy
// role field, "*" when unreserved) is role.
func ForRole(role string) func(mesos.Resource) bool {
	return func(r mesos.Resource) bool {
		if r.AllocationInfo != nil && r.AllocationInfo.Role != nil {
			return *r.AllocationInfo.Role == role
		}
		if n := len(r.Reservations); n > 0 {
			return r.Reservations[n-1].GetRole() == role
		}
		return r.GetRole() == role
	}
}

// Reserved reports whether r is reserved, statically or dynamically: it has a
// reservations stack, a legacy reservation, or a legacy role other than "*".
func Reserved(r mesos.Resource) bool {
	return len(r.Reservations) > 0 || r.Reservation != nil || r.GetRole() != "*"
}

// Unreserved reports whether r is not Reserved.
func Unreserved(r mesos.Resource) bool { return !Reserved(r) }

// Scalar builds an unreserved scalar resource, such as Scalar("cpus", 0.5).
func Scalar(name string, value float64) mesos.Resource {
	return mesos.Resource{Name: name, Type: mesos.SCALAR.Enum(), Scalar: &mesos.Value_Scalar{Value: value}}
}

// Ranges builds an unreserved range resource from the given ranges, as is.
func Ranges(name string, ranges ...mesos.Value_Range) mesos.Resource {
	return mesos.Resource{
		Name:   name,
		Type:   mesos.RANGES.Enum(),
		Ranges: &mesos.Value_Ranges{Range: slices.Clone(ranges)},
	}
}

// PortRange builds an unreserved "ports" resource holding begin..end
// inclusive.
func PortRange(begin, end uint64) mesos.Resource {
	return Ranges("ports", mesos.Value_Range{Begin: begin, End: end})
}

// Ports builds an unreserved "ports" resource holding exactly the given
// ports, consecutive ports merged into ranges. A repeated port is kept as an
// overlap, so that ResourcesOf reports it rather than losing it.
func Ports(ports ...uint64) mesos.Resource {
	sorted := slices.Clone(ports)
	slices.Sort(sorted)
	var ranges []mesos.Value_Range
	for _, p := range sorted {
		if n := len(ranges); n > 0 && ranges[n-1].End != math.MaxUint64 && p == ranges[n-1].End+1 {
			ranges[n-1].End = p
			continue
		}
		ranges = append(ranges, mesos.Value_Range{Begin: p, End: p})
	}
	return Ranges("ports", ranges...)
}

// Set builds an unreserved set resource, such as Set("zones", "a", "b").
func Set(name string, items ...string) mesos.Resource {
	return mesos.Resource{Name: name, Type: mesos.SET.Enum(), Set: &mesos.Value_Set{Item: slices.Clone(items)}}
}
