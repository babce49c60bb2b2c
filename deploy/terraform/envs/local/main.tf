# The same modules against LocalStack (S3, STS, IAM, KMS, SSM, logs,
# Cognito): `terraform apply` here while LocalStack runs (deploy/local).
terraform {
  required_version = ">= 1.11"
  required_providers {
    aws = {
      source  = "hashicorp/aws"
      version = "~> 6.0"
    }
  }
}

provider "aws" {
  region                      = "us-east-1"
  access_key                  = "test"
  secret_key                  = "test"
  skip_credentials_validation = true
  skip_metadata_api_check     = true
  skip_requesting_account_id  = true
  s3_use_path_style           = true
  endpoints {
    s3         = var.localstack
    sts        = var.localstack
    iam        = var.localstack
    kms        = var.localstack
    ssm        = var.localstack
    logs       = var.localstack
    cognitoidp = var.localstack
  }
}

module "kms" {
  source = "../../modules/kms"
  name   = "hqd-local"
}

module "identity" {
  source = "../../modules/identity"
  name   = "hqd-local"
}

module "storage" {
  source      = "../../modules/storage"
  bucket      = "hqd-local-uploads"
  kms_key_arn = module.kms.key_arn
}

module "logs" {
  source      = "../../modules/logs"
  name        = "hqd-local"
  kms_key_arn = module.kms.key_arn
}

module "user_role" {
  source        = "../../modules/user-role"
  name          = "hqd-local"
  host_role_arn = "arn:aws:iam::000000000000:root"
  bucket_arn    = module.storage.bucket_arn
  kms_key_arn   = module.kms.key_arn
}

variable "localstack" {
  description = "LocalStack's endpoint."
  type        = string
  default     = "http://localhost:4566"
}

output "bucket" {
  description = "HQD_BUCKET."
  value       = module.storage.bucket
}

output "user_pool_id" {
  description = "HQD_COGNITO_USER_POOL_ID."
  value       = module.identity.user_pool_id
}

output "client_id" {
  description = "HQD_COGNITO_CLIENT_IDS."
  value       = module.identity.client_id
}

output "role_arn" {
  description = "HQD_STS_ROLE_ARN."
  value       = module.user_role.role_arn
}
