variable "project_id" {
  description = "GCP project that holds the secret."
  type        = string
}

variable "e2b_api_key" {
  description = "The API key the agent services send (a corral API key)."
  type        = string
  sensitive   = true
}

variable "gke_service_account" {
  description = "Email of the Google service account the agent services' Kubernetes service account is bound to (workload identity)."
  type        = string
}
