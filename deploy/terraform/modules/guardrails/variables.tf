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

variable "data_event_bucket_arns" {
  description = "Buckets whose object reads and writes CloudTrail records as data events (the uploads bucket)."
  type        = list(string)
  default     = []
}

variable "disk_paths" {
  description = "Mount points whose disk use is alarmed on (the host's CloudWatch agent publishes disk_used_percent for them)."
  type        = list(string)
  default     = ["/", "/srv/lake"]
}

variable "disk_used_percent_threshold" {
  description = "Disk use, in percent, above which the disk alarms fire."
  type        = number
  default     = 85
}

variable "tags" {
  description = "Tags for every resource."
  type        = map(string)
  default     = {}
}
