# The Cognito user pool of HQ Cloud: self sign-up, e-mail as the username,
# auto-verified e-mail; one public app client for the PWA and the CLI.
resource "aws_cognito_user_pool" "this" {
  name = "${var.name}-users"
  # The seed's pool is CDK's `signInAliases: { email: true }` (no
  # `username: true`), which CDK turns into UsernameAttributes [email]:
  # "email as sign-in alias ... not a separate username". alias_attributes
  # would be `{ username: true, email: true }` and would refuse the
  # e-mail-shaped usernames the PWA and CLI sign up with. Changing either
  # attribute replaces the pool (every account is lost).
  username_attributes      = ["email"]
  auto_verified_attributes = ["email"]
  deletion_protection      = "ACTIVE"
  mfa_configuration        = "OPTIONAL"

  software_token_mfa_configuration {
    enabled = true
  }

  admin_create_user_config {
    allow_admin_create_user_only = false # self sign-up
  }

  password_policy {
    minimum_length    = 8
    require_lowercase = true
    require_uppercase = true
    require_numbers   = true
    require_symbols   = true
  }

  account_recovery_setting {
    recovery_mechanism {
      name     = "verified_email"
      priority = 1
    }
  }

  user_pool_add_ons {
    advanced_security_mode = "OFF"
  }

  tags = var.tags
}

# A public client: no secret (SPEC §5.2). USER_PASSWORD_AUTH for the PWA
# and CLI, SRP for clients that prefer it, refresh for hqd's /api/auth/refresh.
resource "aws_cognito_user_pool_client" "app" {
  name                                 = "${var.name}-app"
  user_pool_id                         = aws_cognito_user_pool.this.id
  generate_secret                      = false
  explicit_auth_flows                  = ["ALLOW_USER_PASSWORD_AUTH", "ALLOW_USER_SRP_AUTH", "ALLOW_REFRESH_TOKEN_AUTH"]
  prevent_user_existence_errors        = "ENABLED"
  enable_token_revocation              = true
  access_token_validity                = 60
  id_token_validity                    = 60
  refresh_token_validity               = 30
  allowed_oauth_flows_user_pool_client = false

  token_validity_units {
    access_token  = "minutes"
    id_token      = "minutes"
    refresh_token = "days"
  }

  # Must agree with hqd's HQD_COGNITO_REFRESH_ROTATION (README, Sessions).
  dynamic "refresh_token_rotation" {
    for_each = var.refresh_token_rotation ? [1] : []
    content {
      feature                    = "ENABLED"
      retry_grace_period_seconds = 10
    }
  }
}
