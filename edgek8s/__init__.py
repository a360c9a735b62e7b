"""edgek8s: a Kubernetes-compatible cluster for edge hosts."""
