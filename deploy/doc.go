// Package deploy is regent's deployment module, kept apart from the main
// module so that the Helm SDKs and the Kubernetes API types never enter the
// regent binary's dependency graph:
//
//   - image (a command) assembles the container image offline from a static
//     regent binary (`make image`);
//   - chart (tests only) lints and renders charts/regent with the Helm 3
//     and Helm 4 SDKs and checks every manifest against the Kubernetes API
//     types and the binary's real flags (`make test-deploy`).
//
// It does not import the main module: the chart tests read the binary's
// flags from docs/FLAGS.md, which the main module keeps current.
package deploy
