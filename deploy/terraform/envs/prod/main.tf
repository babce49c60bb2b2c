# The whole estate around hqd, composed from the modules.
module "kms" {
  source = "../../modules/kms"
  name   = var.name
}

module "guardrails" {
  source       = "../../modules/guardrails"
  name         = var.name
  kms_key_arn  = module.kms.key_arn
  instance_id  = module.host.instance_id
  alert_emails = var.alert_emails
  # CloudTrail records who read, wrote and deleted which user file.
  data_event_bucket_arns = [module.storage.bucket_arn]
}

module "identity" {
  source                 = "../../modules/identity"
  name                   = var.name
  refresh_token_rotation = var.refresh_token_rotation
}

module "storage" {
  source      = "../../modules/storage"
  bucket      = var.bucket
  kms_key_arn = module.kms.key_arn
}

module "logs" {
  source      = "../../modules/logs"
  name        = var.name
  kms_key_arn = module.kms.key_arn
}

module "host" {
  source                   = "../../modules/host"
  name                     = var.name
  vpc_id                   = var.vpc_id
  subnet_id                = var.subnet_id
  kms_key_arn              = module.kms.key_arn
  bucket_arn               = module.storage.bucket_arn
  log_group_arn            = module.logs.log_group_arn
  log_group_name           = module.logs.log_group_name
  open_http                = var.open_http
  hqd_release_s3_uri       = var.hqd_release_s3_uri
  hqd_release_sha256       = var.hqd_release_sha256
  permissions_boundary_arn = module.guardrails.boundary_arn
}

module "user_role" {
  source                   = "../../modules/user-role"
  name                     = var.name
  host_role_arn            = module.host.role_arn
  bucket_arn               = module.storage.bucket_arn
  kms_key_arn              = module.kms.key_arn
  permissions_boundary_arn = module.guardrails.boundary_arn
}

module "ssm" {
  source      = "../../modules/ssm"
  name        = var.name
  kms_key_arn = module.kms.key_arn
  settings = {
    HQD_STORAGE                  = "s3"
    HQD_BUCKET                   = module.storage.bucket
    HQD_AWS_REGION               = var.region
    HQD_COGNITO_USER_POOL_ID     = module.identity.user_pool_id
    HQD_COGNITO_CLIENT_IDS       = module.identity.client_id
    HQD_COGNITO_REFRESH_ROTATION = tostring(var.refresh_token_rotation)
    HQD_STS_ROLE_ARN             = module.user_role.role_arn
    HQD_KMS_KEY_ARN              = module.kms.key_arn
    HQD_DOMAINS                  = join(",", var.api_hostnames)
    HQD_ACME_EMAIL               = var.acme_email
    HQD_CORS_ORIGINS             = join(",", var.cors_origins)
    HQD_VERIFIER_DIR             = "/srv/lake/proving"
    HQD_EVALUATOR_DIR            = "/srv/lake/accounting"
    HQD_LAKE_CACHE_DIR           = "/srv/lake/cache"
  }
}

module "dns" {
  source    = "../../modules/dns"
  zone_id   = var.zone_id
  hostnames = var.api_hostnames
  ip        = module.host.public_ip
}

module "sites" {
  source   = "../../modules/static-site"
  for_each = var.static_sites
  providers = {
    aws           = aws
    aws.us_east_1 = aws.us_east_1
  }
  domain                 = each.key
  zone_id                = each.value.zone_id
  not_found_page         = each.value.not_found_page
  immutable_paths        = each.value.immutable_paths
  log_bucket_domain_name = var.log_bucket_domain_name
  # The PWA calls the API and Cognito from its own origin: its CSP's
  # connect-src must name them (the other sites call nothing).
  connect_src = each.value.calls_api ? local.api_origins : []
}

locals {
  api_origins = concat([for h in var.api_hostnames : "https://${h}"], ["https://cognito-idp.${var.region}.amazonaws.com"])
}

module "ci" {
  source                   = "../../modules/ci-oidc"
  name                     = var.name
  repository               = var.repository
  site_bucket_arns         = [for s in module.sites : "arn:aws:s3:::${s.bucket}"]
  distribution_arns        = [for s in module.sites : "arn:aws:cloudfront::${data.aws_caller_identity.this.account_id}:distribution/${s.distribution_id}"]
  release_bucket_arn       = var.release_bucket_arn
  permissions_boundary_arn = module.guardrails.boundary_arn
}

data "aws_caller_identity" "this" {}
