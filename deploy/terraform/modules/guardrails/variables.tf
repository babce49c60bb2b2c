variable "name" {
  description = "Prefix of every resource name."
  type        = string
}

variable "kms_key_arn" {
  description = "The CMK of the trail, its logs and the alerts topic."
  type        = string
}

variable "instance_id" {
  description = "The host, for its alarms."
  type        = string
}

variable "monthly_budget_usd" {
  description = "The monthly budget."
  type        = string
  default     = "50"
}

variable "alert_emails" {
  description = "Who gets budget and health alerts."
  type        = list(string)
  default     = []
}

variable "tags" {
  description = "Tags for every resource."
  type        = map(string)
  default     = {}
}
