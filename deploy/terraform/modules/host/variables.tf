variable "name" {
  description = "Prefix of every resource name."
  type        = string
}

variable "instance_type" {
  description = "The instance type (2 vCPU, 2 GB)."
  type        = string
  default     = "t4g.small"
}

variable "vpc_id" {
  description = "The VPC (the default one: no NAT)."
  type        = string
}

variable "subnet_id" {
  description = "A public subnet of the VPC."
  type        = string
}

variable "kms_key_arn" {
  description = "The CMK of the volumes, settings and logs."
  type        = string
}

variable "bucket_arn" {
  description = "The uploads bucket."
  type        = string
}

variable "log_group_arn" {
  description = "hqd's log group."
  type        = string
}

variable "log_group_name" {
  description = "hqd's log group (the logs module's), where the CloudWatch agent ships hqd's journal."
  type        = string
}

variable "lake_volume_gb" {
  description = "Size of the lake volume."
  type        = number
  default     = 40
}

variable "open_http" {
  description = "Open port 80 for ACME HTTP-01 and redirects (TLS-ALPN-01 needs 443 only)."
  type        = bool
  default     = false
}

variable "hqd_release_s3_uri" {
  description = "The hqd arm64 release archive in the release bucket, s3://bucket/prefix/name.tar.gz (GOARCH=arm64 make release: the binary and deploy/systemd); the instance role may read that prefix only."
  type        = string
  validation {
    condition     = can(regex("^s3://[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]/.+/[^/]+\\.tar\\.gz$", var.hqd_release_s3_uri))
    error_message = "hqd_release_s3_uri must be s3://bucket/prefix/name.tar.gz (a prefix, so that the host reads releases only)."
  }
}

variable "hqd_release_sha256" {
  description = "SHA-256 of the release archive, checked before it is installed."
  type        = string
}

variable "permissions_boundary_arn" {
  description = "Permission boundary of the instance role."
  type        = string
  default     = null
}

variable "tags" {
  description = "Tags for every resource."
  type        = map(string)
  default     = {}
}
