output "api_ip" {
  description = "The host's Elastic IP."
  value       = module.host.public_ip
}

output "user_pool_id" {
  description = "HQD_COGNITO_USER_POOL_ID."
  value       = module.identity.user_pool_id
}

output "client_id" {
  description = "HQD_COGNITO_CLIENT_IDS."
  value       = module.identity.client_id
}

output "deploy_role_arn" {
  description = "The CI role."
  value       = module.ci.role_arn
}
