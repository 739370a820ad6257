package testserver

import (
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"sync"
)

// etcdprocPackage is the import path of the etcd wrapper command.
const etcdprocPackage = "github.com/regent-sched/regent/integration/testserver/etcdproc"

// etcdprocSource is the wrapper's source, relative to the module root.
const etcdprocSource = "integration/testserver/etcdproc/main.go"

// etcdBinary caches the result of building the etcd wrapper for the life of
// the test process. It is the package's only mutable package-level state.
var etcdBinary struct {
	once sync.Once
	path string
	err  error
}

// etcdBinaryPath returns the path of an etcd server binary built from
// ./etcdproc, building it on first use.
func etcdBinaryPath() (string, error) {
	etcdBinary.once.Do(func() {
		etcdBinary.path, etcdBinary.err = buildEtcdBinary()
	})
	return etcdBinary.path, etcdBinary.err
}

// buildEtcdBinary builds the wrapper into os.TempDir()/regent-etcdproc-KEY,
// where KEY hashes everything the binary depends on: go.mod, go.sum, the
// wrapper source, the Go version and the target platform. An existing
// binary there is reused. Concurrent builders (parallel test binaries)
// each build to a private temporary name and atomically rename it into
// place, so a reader never sees a partial file; on Linux a lock file also
// keeps them from building at the same time.
func buildEtcdBinary() (string, error) {
	goTool, err := exec.LookPath("go")
	if err != nil {
		return "", fmt.Errorf("build etcd: find go command: %w", err)
	}
	out, err := exec.Command(goTool, "env", "GOMOD").Output()
	if err != nil {
		return "", fmt.Errorf("build etcd: go env GOMOD: %w", err)
	}
	gomod := strings.TrimSpace(string(out))
	if gomod == "" || gomod == os.DevNull {
		return "", fmt.Errorf("build etcd: not inside a Go module (go env GOMOD = %q)", gomod)
	}
	root := filepath.Dir(gomod)

	h := sha256.New()
	for _, rel := range []string{"go.mod", "go.sum", etcdprocSource} {
		b, err := os.ReadFile(filepath.Join(root, rel))
		if err != nil {
			return "", fmt.Errorf("build etcd: hash inputs: %w", err)
		}
		fmt.Fprintf(h, "%s %d\n", rel, len(b))
		h.Write(b)
	}
	fmt.Fprintf(h, "%s %s/%s\n", runtime.Version(), runtime.GOOS, runtime.GOARCH)
	key := hex.EncodeToString(h.Sum(nil))[:20]

	dir := filepath.Join(os.TempDir(), "regent-etcdproc-"+key)
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return "", fmt.Errorf("build etcd: create cache dir: %w", err)
	}
	if fi, err := os.Lstat(dir); err != nil || !fi.IsDir() {
		return "", fmt.Errorf("build etcd: cache dir %s is not a plain directory (err=%v)", dir, err)
	}
	bin := filepath.Join(dir, "etcd")
	if usableBinary(bin) {
		return bin, nil
	}
	// Serialise builds across test binaries running in parallel (go test
	// ./...), so the first one builds and the others reuse its result.
	unlock, err := lockFile(filepath.Join(dir, "build.lock"))
	if err != nil {
		return "", fmt.Errorf("build etcd: %w", err)
	}
	defer unlock()
	if usableBinary(bin) {
		return bin, nil
	}

	tmp, err := os.CreateTemp(dir, "etcd-*.tmp")
	if err != nil {
		return "", fmt.Errorf("build etcd: %w", err)
	}
	tmpName := tmp.Name()
	if err := tmp.Close(); err != nil {
		return "", fmt.Errorf("build etcd: %w", err)
	}
	cmd := exec.Command(goTool, "build", "-o", tmpName, etcdprocPackage)
	cmd.Dir = root
	if out, err := cmd.CombinedOutput(); err != nil {
		_ = os.Remove(tmpName)
		return "", fmt.Errorf("build etcd: go build %s: %w\n%s", etcdprocPackage, err, out)
	}
	if err := os.Rename(tmpName, bin); err != nil {
		_ = os.Remove(tmpName)
		return "", fmt.Errorf("build etcd: install binary: %w", err)
	}
	return bin, nil
}

// usableBinary reports whether path is an executable regular file.
func usableBinary(path string) bool {
	fi, err := os.Stat(path)
	return err == nil && fi.Mode().IsRegular() && fi.Mode()&0o100 != 0
}
