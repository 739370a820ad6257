package persist

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
)

// exportVersion is the version of the JSON export document.
const exportVersion = 1

// exportDoc is the JSON form of a snapshot. Record values are opaque bytes
// and appear base64-encoded.
type exportDoc struct {
	Regent      string            `json:"regent_persist_export"`
	Version     int               `json:"version"`
	Framework   string            `json:"framework,omitempty"`
	FrameworkID string            `json:"framework_id"`
	Generation  uint64            `json:"generation"`
	Format      int               `json:"format"`
	Tasks       map[string][]byte `json:"tasks"`
	Entries     map[string][]byte `json:"entries"`
}

const exportMagic = "regent persist export"

// framed is implemented by every store of this package.
type framed interface{ Framework() string }

// Export loads s and returns its snapshot as a JSON document, for backups
// and for moving a framework between stores.
func Export(ctx context.Context, s Store) ([]byte, error) {
	snap, err := s.Load(ctx)
	if err != nil {
		return nil, fmt.Errorf("persist: export: %w", err)
	}
	doc := exportDoc{
		Regent:      exportMagic,
		Version:     exportVersion,
		FrameworkID: snap.FrameworkID,
		Generation:  snap.Generation,
		Format:      snap.Format,
		Tasks:       snap.Tasks,
		Entries:     snap.Entries,
	}
	if f, ok := s.(framed); ok {
		doc.Framework = f.Framework()
	}
	out, err := json.MarshalIndent(&doc, "", "  ")
	if err != nil {
		return nil, fmt.Errorf("persist: export: %w", err)
	}
	return out, nil
}

// ErrNotEmpty is returned by Import when the target store already holds
// state: an import never merges or overwrites.
var ErrNotEmpty = errors.New("persist: import target is not empty")

// Import writes an Export document into s, which must be empty (never
// committed to), in one commit under fence, and returns the new
// generation (1). The document's own generation is not carried over:
// generations count the commits of one store. A document exported from a
// store of another framework is refused with ErrForeign.
func Import(ctx context.Context, s Store, fence Fence, doc []byte) (uint64, error) {
	var d exportDoc
	dec := json.NewDecoder(bytes.NewReader(doc))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&d); err != nil {
		return 0, fmt.Errorf("persist: import: not an export document: %w", err)
	}
	if d.Regent != exportMagic {
		return 0, fmt.Errorf("persist: import: not a regent persist export")
	}
	if d.Version > exportVersion {
		return 0, fmt.Errorf("persist: import: export version %d, this binary reads up to %d: %w", d.Version, exportVersion, ErrNewerFormat)
	}
	if f, ok := s.(framed); ok && d.Framework != "" && d.Framework != f.Framework() {
		return 0, fmt.Errorf("persist: import: document of framework %q into a store of %q: %w", d.Framework, f.Framework(), ErrForeign)
	}
	snap, err := s.Load(ctx)
	if err != nil {
		return 0, fmt.Errorf("persist: import: load target: %w", err)
	}
	if snap.Generation != 0 || len(snap.Tasks) != 0 || len(snap.Entries) != 0 || snap.FrameworkID != "" {
		return 0, fmt.Errorf("persist: import: target holds generation %d with %d tasks and %d entries: %w",
			snap.Generation, len(snap.Tasks), len(snap.Entries), ErrNotEmpty)
	}
	b := Batch{PutTasks: d.Tasks, PutEntries: d.Entries}
	if d.FrameworkID != "" {
		id := d.FrameworkID
		b.FrameworkID = &id
	}
	gen, err := s.Commit(ctx, fence, b)
	if err != nil {
		return 0, fmt.Errorf("persist: import: %w", err)
	}
	return gen, nil
}
