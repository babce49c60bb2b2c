variable "zone_id" {
  description = "The Route 53 hosted zone."
  type        = string
}

variable "hostnames" {
  description = "API hostnames (HQD_DOMAINS)."
  type        = list(string)
}

variable "ip" {
  description = "The host's Elastic IP."
  type        = string
}
