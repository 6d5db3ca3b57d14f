output "node_pool" {
  description = "Name of the created node pool."
  value       = google_container_node_pool.corral.name
}
