// Package cluster is Usher's real-API-server test tier. It renders every kustomize overlay under
// manifests/ and checks it three ways: against golden files (no cluster needed), against
// invariants the project promises (restricted pods, no committed keys, a catalog that matches its
// Fleet), and against a real kube-apiserver and etcd with the Agones CRDs installed (strict
// server-side apply, RBAC through SubjectAccessReviews, Pod Security admission).
//
// The binaries are built from the Go modules pinned in this module's go.mod by
// hack/cluster-bins.sh (or `go tool task cluster:bins`); the CRDs come from $USHER_AGONES_CRDS.
// Without them the cluster tests skip, except in CI, where they fail.
package cluster
