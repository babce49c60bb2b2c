variable "name" {
  description = "Prefix of every resource name."
  type        = string
}

variable "kms_key_arn" {
  description = "The CMK that encrypts the logs."
  type        = string
}

variable "retention_days" {
  description = "How long logs are kept."
  type        = number
  default     = 7
}

variable "tags" {
  description = "Tags for every resource."
  type        = map(string)
  default     = {}
}
