# An example root module: the spec's API-key secret and a corral sandbox node pool.
#   terraform init && terraform apply -var project_id=... -var cluster=... (see docs/DEPLOY.md)
module "e2b" {
  source              = "./modules/e2b"
  project_id          = var.project_id
  e2b_api_key         = var.e2b_api_key
  gke_service_account = var.gke_service_account
}

module "corral_node_pool" {
  source               = "./modules/corral-node-pool"
  project_id           = var.project_id
  cluster              = var.cluster
  location             = var.location
  node_service_account = var.node_service_account
  max_nodes            = var.max_sandbox_nodes
}
