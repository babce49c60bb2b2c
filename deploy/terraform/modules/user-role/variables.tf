variable "name" {
  description = "Prefix of every resource name."
  type        = string
}

variable "host_role_arn" {
  description = "The host's instance role: the only principal trusted."
  type        = string
}

variable "bucket_arn" {
  description = "The uploads bucket."
  type        = string
}

variable "kms_key_arn" {
  description = "The bucket's CMK."
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
