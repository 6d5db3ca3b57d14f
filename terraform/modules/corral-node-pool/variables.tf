variable "project_id" {
  description = "GCP project of the cluster."
  type        = string
}

variable "cluster" {
  description = "Name of the GKE Standard cluster that gets the pool."
  type        = string
}

variable "location" {
  description = "Region or zone of the cluster."
  type        = string
}

variable "name" {
  description = "Node pool name."
  type        = string
  default     = "corral-sandboxes"
}

variable "machine_type" {
  description = "Machine type; docs/DEPLOY.md sizes it from the measured per-sandbox memory (about 10 MB idle, plus what each sandbox's code uses)."
  type        = string
  default     = "n2-standard-8"
}

variable "min_nodes" {
  description = "Smallest number of sandbox machines (per zone for a regional cluster)."
  type        = number
  default     = 1
}

variable "max_nodes" {
  description = "Largest number of sandbox machines (per zone for a regional cluster)."
  type        = number
  default     = 10
}

variable "disk_size_gb" {
  description = "Boot disk: templates and every sandbox's writable layer live under /var/lib/corral on it."
  type        = number
  default     = 200
}

variable "node_service_account" {
  description = "Email of the (least-privileged) Google service account the machines run as."
  type        = string
}
