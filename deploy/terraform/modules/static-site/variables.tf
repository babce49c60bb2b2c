variable "domain" {
  description = "The site's hostname; also its bucket's name."
  type        = string
}

variable "zone_id" {
  description = "The Route 53 zone of the domain."
  type        = string
}

variable "not_found_page" {
  description = "The page 403 and 404 map to (the PWA uses /index.html)."
  type        = string
  default     = "/404.html"
}

variable "content_security_policy" {
  description = "The CSP sent with every page (the PWA's names its API and Cognito in connect-src)."
  type        = string
  default     = "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; object-src 'none'; base-uri 'none'; frame-ancestors 'none'"
}

variable "log_bucket_domain_name" {
  description = "Domain name of the bucket CloudFront writes access logs to."
  type        = string
}

variable "tags" {
  description = "Tags for every resource."
  type        = map(string)
  default     = {}
}
