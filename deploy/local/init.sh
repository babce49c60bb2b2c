#!/usr/bin/env bash
# Makes the bucket, user pool and app client the compose file's hqd uses,
# and writes their ids to deploy/local/hqd.env; restart hqd afterwards.
set -euo pipefail
cd "$(dirname "$0")"
export AWS_ACCESS_KEY_ID=test AWS_SECRET_ACCESS_KEY=test AWS_DEFAULT_REGION=us-east-1
aws --endpoint-url http://127.0.0.1:4566 s3 mb s3://hqd-local-uploads || true
pool=$(aws --endpoint-url http://127.0.0.1:9229 cognito-idp create-user-pool --pool-name hqd \
  --username-attributes email --query UserPool.Id --output text)
client=$(aws --endpoint-url http://127.0.0.1:9229 cognito-idp create-user-pool-client --user-pool-id "$pool" \
  --client-name hqd --query UserPoolClient.ClientId --output text)
cat > hqd.env <<ENV
HQD_COGNITO_USER_POOL_ID=$pool
HQD_COGNITO_CLIENT_IDS=$client
HQD_JWT_ISSUER=http://localhost:9229/$pool
HQD_JWKS_URL=http://127.0.0.1:9229/$pool/.well-known/jwks.json
ENV
echo "wrote deploy/local/hqd.env; now: docker compose -f deploy/local/docker-compose.yml restart hqd"
