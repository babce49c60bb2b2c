variable "bucket" {
  description = "Name of the uploads bucket (HQD_BUCKET)."
  type        = string
}

variable "kms_key_arn" {
  description = "The CMK of SSE-KMS."
  type        = string
}

variable "cors_origins" {
  description = "Origins allowed by CORS (the seed's: the PWA and the Vite dev server)."
  type        = list(string)
  default     = ["https://hq.indigoai.com", "http://localhost:5173"]
}

variable "access_log_bucket" {
  description = "Bucket for S3 server access logs; none when empty."
  type        = string
  default     = ""
}

variable "tags" {
  description = "Tags for every resource."
  type        = map(string)
  default     = {}
}
