variable "project_id" {
  type = string
}

variable "cluster" {
  description = "GKE Standard cluster for corral's sandbox node pool."
  type        = string
}

variable "location" {
  type = string
}

variable "e2b_api_key" {
  type      = string
  sensitive = true
}

variable "gke_service_account" {
  type = string
}

variable "node_service_account" {
  type = string
}

variable "max_sandbox_nodes" {
  type    = number
  default = 10
}
