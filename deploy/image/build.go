package main

import (
	"archive/tar"
	"bytes"
	"fmt"
	"io"
	"os"
	"time"

	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/empty"
	"github.com/google/go-containerregistry/pkg/v1/mutate"
	"github.com/google/go-containerregistry/pkg/v1/tarball"
	"github.com/google/go-containerregistry/pkg/v1/types"
)

// Where things are in the image, and who runs it.
const (
	binaryPath = "/usr/local/bin/regent"
	caPath     = "/etc/ssl/certs/ca-certificates.crt"
	uid        = 65532
	user       = "nonroot"
	httpPort   = "8080/tcp"
)

// spec is what an image is built from.
type spec struct {
	Binary   string    // a static linux regent binary
	CACerts  string    // PEM CA bundle to copy to caPath
	Version  string    // for the version label
	Revision string    // for the revision label
	Created  time.Time // every timestamp in the image
}

// build assembles the image: a base layer (users, CA certificates,
// directories) and a layer holding the binary, with a config that runs
// `regent run` as uid 65532.
func build(s spec) (v1.Image, error) {
	arch, err := staticArch(s.Binary)
	if err != nil {
		return nil, err
	}
	bin, err := os.ReadFile(s.Binary)
	if err != nil {
		return nil, fmt.Errorf("read binary: %w", err)
	}
	ca, err := os.ReadFile(s.CACerts)
	if err != nil {
		return nil, fmt.Errorf("read CA certificates: %w", err)
	}
	base, err := layer(s.Created, baseFiles(ca))
	if err != nil {
		return nil, fmt.Errorf("base layer: %w", err)
	}
	binLayer, err := layer(s.Created, []file{
		{path: "usr/", dir: true, mode: 0o755},
		{path: "usr/local/", dir: true, mode: 0o755},
		{path: "usr/local/bin/", dir: true, mode: 0o755},
		{path: binaryPath[1:], mode: 0o755, data: bin},
	})
	if err != nil {
		return nil, fmt.Errorf("binary layer: %w", err)
	}
	img := mutate.MediaType(empty.Image, types.OCIManifestSchema1)
	img = mutate.ConfigMediaType(img, types.OCIConfigJSON)
	created := v1.Time{Time: s.Created}
	img, err = mutate.Append(img,
		mutate.Addendum{Layer: base, MediaType: types.OCILayer, History: v1.History{
			Created: created, CreatedBy: "regent deploy/image: users, CA certificates, /tmp", Comment: "base"}},
		mutate.Addendum{Layer: binLayer, MediaType: types.OCILayer, History: v1.History{
			Created: created, CreatedBy: "regent deploy/image: COPY regent " + binaryPath, Comment: "binary"}},
	)
	if err != nil {
		return nil, err
	}
	cf, err := img.ConfigFile()
	if err != nil {
		return nil, err
	}
	cf = cf.DeepCopy()
	cf.OS, cf.Architecture = "linux", arch
	cf.Created = created
	cf.Author = "regent"
	cf.Config = imageConfig(s)
	return mutate.ConfigFile(img, cf)
}

// imageConfig is how the image runs: `regent run` as the non-root user.
func imageConfig(s spec) v1.Config {
	labels := map[string]string{
		"org.opencontainers.image.title":  "regent",
		"org.opencontainers.image.source": "https://github.com/regent-sched/regent",
	}
	if s.Version != "" {
		labels["org.opencontainers.image.version"] = s.Version
	}
	if s.Revision != "" {
		labels["org.opencontainers.image.revision"] = s.Revision
	}
	return v1.Config{
		User:         fmt.Sprintf("%d:%d", uid, uid),
		Entrypoint:   []string{binaryPath},
		Cmd:          []string{"run"},
		Env:          []string{"PATH=/usr/local/bin:/usr/bin:/bin", "SSL_CERT_FILE=" + caPath},
		WorkingDir:   "/",
		ExposedPorts: map[string]struct{}{httpPort: {}},
		Labels:       labels,
	}
}

// baseFiles are what the scratch base needs: the non-root user and group
// (and root's, for tools that look them up), the CA certificates for
// https:// etcd, Mesos and peers, and a world-writable /tmp for runs
// without a mounted one.
func baseFiles(ca []byte) []file {
	passwd := fmt.Sprintf("root:x:0:0:root:/root:/sbin/nologin\n%s:x:%d:%d:%s:/home/%s:/sbin/nologin\n", user, uid, uid, user, user)
	group := fmt.Sprintf("root:x:0:\n%s:x:%d:\n", user, uid)
	return []file{
		{path: "etc/", dir: true, mode: 0o755},
		{path: "etc/passwd", mode: 0o644, data: []byte(passwd)},
		{path: "etc/group", mode: 0o644, data: []byte(group)},
		{path: "etc/ssl/", dir: true, mode: 0o755},
		{path: "etc/ssl/certs/", dir: true, mode: 0o755},
		{path: caPath[1:], mode: 0o644, data: ca},
		{path: "home/", dir: true, mode: 0o755},
		{path: "home/" + user + "/", dir: true, mode: 0o700, owner: uid},
		{path: "tmp/", dir: true, mode: 0o1777},
	}
}

// file is one entry of a layer.
type file struct {
	path  string // relative, directories end in '/'
	dir   bool
	mode  int64
	owner int // uid and gid
	data  []byte
}

// layer is an uncompressed tar of files (gzip-compressed by the layer),
// every timestamp set to created so that the digest depends on content only.
func layer(created time.Time, files []file) (v1.Layer, error) {
	var buf bytes.Buffer
	tw := tar.NewWriter(&buf)
	for _, f := range files {
		h := &tar.Header{
			Name: f.path, Mode: f.mode, Uid: f.owner, Gid: f.owner, ModTime: created,
			Typeflag: tar.TypeReg, Size: int64(len(f.data)),
		}
		if f.dir {
			h.Typeflag, h.Size = tar.TypeDir, 0
		}
		if err := tw.WriteHeader(h); err != nil {
			return nil, err
		}
		if _, err := tw.Write(f.data); err != nil {
			return nil, err
		}
	}
	if err := tw.Close(); err != nil {
		return nil, err
	}
	data := buf.Bytes()
	return tarball.LayerFromOpener(func() (io.ReadCloser, error) {
		return io.NopCloser(bytes.NewReader(data)), nil
	}, tarball.WithMediaType(types.OCILayer))
}
