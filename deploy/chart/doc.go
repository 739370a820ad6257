// Package chart tests the Helm chart in charts/regent; it has no code of its
// own. The tests lint it strictly and render it with both the Helm 3 and the
// Helm 4 SDK, through the packages `helm lint --strict` and `helm template`
// run (the linter, values coalescing with schema validation, the template
// engine, the manifest sorter) but not pkg/action, whose cluster client a
// client-side render never calls. They decode every manifest strictly into
// the Kubernetes API types (and the Prometheus Operator's for the
// ServiceMonitor) and check what a working, secure HA deployment needs:
// labels, probes timed from the election, the PodDisruptionBudget, the
// security contexts, the spreading of replicas, and environment variables
// named exactly as docs/FLAGS.md names the binary's flags. They also check
// that values.schema.json rejects each kind of bad value with a message
// that names it.
package chart
