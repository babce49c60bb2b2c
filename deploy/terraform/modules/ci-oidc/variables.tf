variable "name" {
  description = "Prefix of every resource name."
  type        = string
}

variable "repository" {
  description = "The GitHub repository, owner/name."
  type        = string
}

variable "site_bucket_arns" {
  description = "The static sites' buckets."
  type        = list(string)
}

variable "distribution_arns" {
  description = "The static sites' distributions."
  type        = list(string)
}

variable "release_bucket_arn" {
  description = "Where hqd releases are published."
  type        = string
}

variable "permissions_boundary_arn" {
  description = "Permission boundary of the role."
  type        = string
  default     = null
}

variable "tags" {
  description = "Tags for every resource."
  type        = map(string)
  default     = {}
}
