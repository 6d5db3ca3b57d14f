# A node pool for corral's node agents (k8s/corral/node-daemonset.yaml) in a GKE Standard
# cluster. The agents need privileged pods, which GKE Autopilot does not admit: the spec's agent
# services may run on Autopilot, corral's sandbox machines need this Standard pool (same or a
# peered cluster; docs/DEPLOY.md).
#
# - The label corral.dev/sandbox-node=true is what the DaemonSet selects; the taint keeps every
#   other workload off these machines, so sandboxes share a kernel with nothing but corral.
# - Ubuntu with containerd: the kernel features corral's namespace tier uses (cgroup v2, user
#   namespaces, loop devices, nftables) are those of the Debian/Ubuntu kernels it is tested on.
# - Node metadata is GKE_METADATA (workload identity), so even a pod on these machines cannot read
#   the node's own service account credentials from the metadata server.
resource "google_container_node_pool" "corral" {
  project  = var.project_id
  name     = var.name
  cluster  = var.cluster
  location = var.location

  initial_node_count = var.min_nodes
  autoscaling {
    min_node_count = var.min_nodes
    max_node_count = var.max_nodes
  }

  management {
    auto_repair  = true
    auto_upgrade = true
  }

  # One machine at a time, so sandboxes move off a node before the next one goes.
  upgrade_settings {
    max_surge       = 1
    max_unavailable = 0
  }

  node_config {
    machine_type    = var.machine_type
    image_type      = "UBUNTU_CONTAINERD"
    disk_type       = "pd-ssd"
    disk_size_gb    = var.disk_size_gb
    service_account = var.node_service_account
    oauth_scopes    = ["https://www.googleapis.com/auth/cloud-platform"]

    labels = {
      "corral.dev/sandbox-node" = "true"
    }

    taint {
      key    = "corral.dev/sandbox"
      value  = "true"
      effect = "NO_SCHEDULE"
    }

    workload_metadata_config {
      mode = "GKE_METADATA"
    }

    shielded_instance_config {
      enable_secure_boot          = true
      enable_integrity_monitoring = true
    }

    metadata = {
      disable-legacy-endpoints = "true"
    }
  }
}
