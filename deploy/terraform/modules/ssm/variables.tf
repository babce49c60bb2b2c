variable "name" {
  description = "Prefix of the parameter paths."
  type        = string
}

variable "kms_key_arn" {
  description = "The CMK that encrypts the parameters."
  type        = string
}

variable "settings" {
  description = "HQD_* settings by name, e.g. { HQD_BUCKET = \"…\" }."
  type        = map(string)
  sensitive   = true
}

variable "tags" {
  description = "Tags for every resource."
  type        = map(string)
  default     = {}
}
