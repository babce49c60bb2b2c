variable "name" {
  description = "Prefix of every resource name, e.g. hqd."
  type        = string
}

variable "tags" {
  description = "Tags for every resource."
  type        = map(string)
  default     = {}
}
