variable "name" {
  description = "Prefix of every resource name."
  type        = string
  default     = "hqd"
}

variable "region" {
  description = "The region of everything but CloudFront's certificates."
  type        = string
  default     = "us-east-1"
}

variable "bucket" {
  description = "The uploads bucket."
  type        = string
}

variable "vpc_id" {
  description = "The VPC of the host (the default VPC)."
  type        = string
}

variable "subnet_id" {
  description = "A public subnet for the host."
  type        = string
}

variable "zone_id" {
  description = "The Route 53 zone of the API hostnames."
  type        = string
}

variable "api_hostnames" {
  description = "The API hostnames hqd serves and gets certificates for."
  type        = list(string)
}

variable "acme_email" {
  description = "ACME account e-mail."
  type        = string
}

variable "open_http" {
  description = "Open port 80 for ACME HTTP-01."
  type        = bool
  default     = false
}

variable "cors_origins" {
  description = "Origins of the PWA."
  type        = list(string)
  default     = ["https://hq.indigoai.com", "http://localhost:5173"]
}

variable "refresh_token_rotation" {
  description = "Rotate refresh tokens (Cognito and hqd agree)."
  type        = bool
  default     = false
}

variable "hqd_release_s3_uri" {
  description = "The hqd arm64 release archive in the release bucket, s3://bucket/prefix/name.tar.gz (GOARCH=arm64 make release); the host reads that prefix with its role."
  type        = string
}

variable "hqd_release_sha256" {
  description = "SHA-256 of that archive."
  type        = string
}

variable "release_bucket_arn" {
  description = "The bucket CI publishes releases to."
  type        = string
}

variable "repository" {
  description = "GitHub repository allowed to deploy, owner/name."
  type        = string
}

variable "static_sites" {
  description = "Static sites by domain: calls_api for the PWA (its CSP's connect-src names the API hostnames and Cognito), immutable_paths for its hashed assets (Astro's sites: [\"/_astro/*\"])."
  type = map(object({
    zone_id         = string
    not_found_page  = string
    calls_api       = optional(bool, false)
    immutable_paths = optional(list(string), ["/assets/*"])
  }))
  default = {}
}

variable "log_bucket_domain_name" {
  description = "Bucket for CloudFront access logs."
  type        = string
}

variable "alert_emails" {
  description = "Who gets alerts."
  type        = list(string)
  default     = []
}
