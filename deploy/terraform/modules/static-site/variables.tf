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

variable "connect_src" {
  description = "Origins the pages may call (the CSP's connect-src besides 'self'): the PWA's API hostnames and Cognito, e.g. [\"https://api.hq.example.com\", \"https://cognito-idp.us-east-1.amazonaws.com\"]."
  type        = list(string)
  default     = []
}

variable "content_security_policy" {
  description = "A CSP to send instead of the default one (hqd serve's, with connect_src)."
  type        = string
  default     = null
}

variable "immutable_paths" {
  description = "Path patterns of hashed, never-changing files, cached a year (Vite's /assets/*; Astro's /_astro/*); everything else is cached five minutes."
  type        = list(string)
  default     = ["/assets/*"]
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
