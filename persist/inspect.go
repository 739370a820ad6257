package persist

import "fmt"

// ManifestPath returns the key (etcd) or znode (ZooKeeper) of framework's
// manifest under prefix (DefaultPrefix if empty). Every commit writes it.
func ManifestPath(prefix, framework string) string {
	return frameworkRoot(prefix, framework) + manifestName
}

// ManifestInfo is what one version of a manifest says about the commit
// that wrote it.
type ManifestInfo struct {
	Framework   string
	Format      int
	Generation  uint64
	FrameworkID string
	// Writer is the fence of the term that wrote it (zero before format 3).
	Writer Fence
}

// InspectManifest decodes a manifest value as read from the store at
// ManifestPath, for tools that follow the store's history (the drill
// checker matches each commit's writer with the election). It checks the
// value as Load does and refuses the same way (ErrCorrupt,
// ErrNewerFormat); it reads nothing else, so it says nothing about the
// records.
func InspectManifest(v []byte) (ManifestInfo, error) {
	m, version, err := decodeManifest(v, maxFormat)
	if err != nil {
		return ManifestInfo{}, fmt.Errorf("persist: manifest: %w", err)
	}
	return ManifestInfo{Framework: m.framework, Format: version, Generation: m.generation,
		FrameworkID: m.frameworkID, Writer: m.writer}, nil
}
