// Command image assembles regent's container image from a static regent
// binary, offline: no Docker engine, no base image to pull. The image is
// built from scratch in two layers, the base (/etc/passwd and /etc/group
// with the non-root user 65532, the build machine's CA certificates, /tmp)
// and the binary (/usr/local/bin/regent), and is written as an OCI image
// layout directory and/or a tarball that `docker load`, `podman load` and
// `kind load image-archive` accept. `make image` runs it:
//
//	CGO_ENABLED=0 go build -ldflags '-s -w -X main.version=0.1.0' -o bin/image/regent ./cmd/regent
//	cd deploy && go run ./image --binary ../bin/image/regent --version 0.1.0 \
//	    --tag ghcr.io/regent-sched/regent:0.1.0 --layout ../bin/regent-image --tar ../bin/regent-image.tar
//
// The result depends only on its inputs (every timestamp is
// SOURCE_DATE_EPOCH, or 1970), so the same binary always gives the same
// image digest.
package main

import (
	"flag"
	"fmt"
	"os"
	"strconv"
	"time"

	"github.com/google/go-containerregistry/pkg/name"
)

func main() {
	if err := run(os.Args[1:]); err != nil {
		fmt.Fprintln(os.Stderr, "image:", err)
		os.Exit(1)
	}
}

func run(args []string) error {
	fs := flag.NewFlagSet("image", flag.ContinueOnError)
	var (
		s      spec
		tag    = fs.String("tag", "ghcr.io/regent-sched/regent:latest", "image reference recorded in the outputs")
		layout = fs.String("layout", "", "write an OCI image layout to this directory (replaced)")
		tar    = fs.String("tar", "", "write a tarball for docker load to this file")
	)
	fs.StringVar(&s.Binary, "binary", "", "static regent binary for linux (CGO_ENABLED=0)")
	fs.StringVar(&s.CACerts, "ca-file", "/etc/ssl/certs/ca-certificates.crt", "PEM CA bundle copied into the image")
	fs.StringVar(&s.Version, "version", "", "version recorded in the org.opencontainers.image.version label")
	fs.StringVar(&s.Revision, "revision", "", "VCS revision recorded in the org.opencontainers.image.revision label")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if fs.NArg() > 0 {
		return fmt.Errorf("unexpected arguments %q", fs.Args())
	}
	if s.Binary == "" {
		return fmt.Errorf("--binary is required")
	}
	if *layout == "" && *tar == "" {
		return fmt.Errorf("nothing to write: give --layout, --tar or both")
	}
	ref, err := name.NewTag(*tag, name.StrictValidation)
	if err != nil {
		return fmt.Errorf("--tag: %w", err)
	}
	if s.Created, err = sourceDateEpoch(); err != nil {
		return err
	}
	img, err := build(s)
	if err != nil {
		return err
	}
	if *layout != "" {
		if err := writeLayout(*layout, img, ref); err != nil {
			return err
		}
	}
	if *tar != "" {
		if err := writeTarball(*tar, img, ref); err != nil {
			return err
		}
	}
	digest, err := img.Digest()
	if err != nil {
		return err
	}
	fmt.Printf("%s@%s\n", ref.Name(), digest)
	return nil
}

// sourceDateEpoch is SOURCE_DATE_EPOCH (reproducible-builds.org), or the
// Unix epoch when it is not set.
func sourceDateEpoch() (time.Time, error) {
	v := os.Getenv("SOURCE_DATE_EPOCH")
	if v == "" {
		return time.Unix(0, 0).UTC(), nil
	}
	sec, err := strconv.ParseInt(v, 10, 64)
	if err != nil {
		return time.Time{}, fmt.Errorf("SOURCE_DATE_EPOCH=%q: not a number of seconds", v)
	}
	return time.Unix(sec, 0).UTC(), nil
}
