output "secret_id" {
  description = "Secret Manager id of the API key, for the Secret Manager CSI driver or External Secrets."
  value       = google_secret_manager_secret.e2b_api_key.secret_id
}
