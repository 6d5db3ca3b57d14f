# terraform/modules/e2b/main.tf (product spec §7.3): the API key the agent services use, kept in
# Secret Manager and readable by the GKE workload identity. With corral the key is a corral API
# key (`corral keys create`, or one of CORRAL_API_KEY's values); nothing else changes.
resource "google_secret_manager_secret" "e2b_api_key" {
  project   = var.project_id
  secret_id = "e2b-api-key"

  replication {
    auto {}
  }
}

resource "google_secret_manager_secret_version" "e2b_api_key_version" {
  secret      = google_secret_manager_secret.e2b_api_key.id
  secret_data = var.e2b_api_key
}

# Grant GKE workload identity access
resource "google_secret_manager_secret_iam_member" "e2b_key_accessor" {
  project   = var.project_id
  secret_id = google_secret_manager_secret.e2b_api_key.secret_id
  role      = "roles/secretmanager.secretAccessor"
  member    = "serviceAccount:${var.gke_service_account}"
}
