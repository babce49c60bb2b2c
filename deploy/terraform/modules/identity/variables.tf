variable "name" {
  description = "Prefix of every resource name."
  type        = string
}

variable "refresh_token_rotation" {
  description = "Rotate refresh tokens; set HQD_COGNITO_REFRESH_ROTATION to the same value."
  type        = bool
  default     = false
}

variable "tags" {
  description = "Tags for every resource."
  type        = map(string)
  default     = {}
}
