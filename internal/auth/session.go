package auth

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	awshttp "github.com/aws/aws-sdk-go-v2/aws/transport/http"
	cip "github.com/aws/aws-sdk-go-v2/service/cognitoidentityprovider"
	ciptypes "github.com/aws/aws-sdk-go-v2/service/cognitoidentityprovider/types"
	"github.com/aws/aws-sdk-go-v2/service/sts"
	"github.com/aws/smithy-go"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/quantapix/hqd/internal/httpx"
)

// CognitoAPI is what refresh and logout need of Cognito (or cognito-local,
// or the dev identity provider).
type CognitoAPI interface {
	InitiateAuth(ctx context.Context, in *cip.InitiateAuthInput, optFns ...func(*cip.Options)) (*cip.InitiateAuthOutput, error)
	GetTokensFromRefreshToken(ctx context.Context, in *cip.GetTokensFromRefreshTokenInput, optFns ...func(*cip.Options)) (*cip.GetTokensFromRefreshTokenOutput, error)
	RevokeToken(ctx context.Context, in *cip.RevokeTokenInput, optFns ...func(*cip.Options)) (*cip.RevokeTokenOutput, error)
}

// STSAPI is what refresh needs of STS.
type STSAPI interface {
	AssumeRole(ctx context.Context, in *sts.AssumeRoleInput, optFns ...func(*sts.Options)) (*sts.AssumeRoleOutput, error)
}

// Sessions serves POST /api/auth/refresh and POST /api/auth/logout
// (SPEC §5.2, §5.4).
type Sessions struct {
	Verifier    *Verifier
	Cognito     CognitoAPI
	ClientID    string // the first of HQD_COGNITO_CLIENT_IDS: a public client
	Rotation    bool   // the client rotates refresh tokens: use GetTokensFromRefreshToken
	STS         STSAPI // nil: answers carry no credentials
	RoleARN     string
	Bucket      string
	Region      string
	KMSKeyARN   string // the bucket's SSE-KMS key; "" when it has none
	Revocations *Revocations
	// SessionDuration is the STS session length: 1 h, as SPEC §5.2 says,
	// when zero. Only tests set it (MinIO's floor is 15 min).
	SessionDuration time.Duration
	Now             func() time.Time

	refreshes *prometheus.CounterVec
	logouts   *prometheus.CounterVec
}

// NewSessions is cfg, ready to serve, with its metrics registered on reg
// (when not nil).
func NewSessions(cfg Sessions, reg prometheus.Registerer) *Sessions {
	s := cfg
	s.refreshes = prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "hqd_auth_refreshes_total", Help: "Token refreshes by outcome.",
	}, []string{"outcome"})
	s.logouts = prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "hqd_auth_logouts_total", Help: "Logouts by outcome.",
	}, []string{"outcome"})
	if reg != nil {
		reg.MustRegister(s.refreshes, s.logouts)
	}
	return &s
}

func (s *Sessions) now() time.Time {
	if s.Now != nil {
		return s.Now()
	}
	return time.Now()
}

type refreshRequest struct {
	RefreshToken string `json:"refreshToken"`
}

// Credentials are STS credentials scoped to the user's prefix.
type Credentials struct {
	AccessKeyID     string `json:"accessKeyId"`
	SecretAccessKey string `json:"secretAccessKey"`
	SessionToken    string `json:"sessionToken"`
	Expiration      string `json:"expiration"`
}

type refreshAnswer struct {
	AccessToken  string       `json:"accessToken"`
	IDToken      string       `json:"idToken"`
	RefreshToken string       `json:"refreshToken,omitempty"` // only when rotated
	ExpiresIn    int32        `json:"expiresIn"`
	TokenType    string       `json:"tokenType"`
	UserID       string       `json:"userId"`
	Bucket       string       `json:"bucket"`
	Region       string       `json:"region"`
	Prefix       string       `json:"prefix"`
	Credentials  *Credentials `json:"credentials,omitempty"`
}

func badRefreshToken(err error) *httpx.Error {
	return &httpx.Error{Status: http.StatusUnauthorized, Code: "invalid_refresh_token",
		Msg: "the refresh token is missing, invalid, expired or revoked; sign in again", Err: err}
}

// refresh is POST /api/auth/refresh. The refresh token is the credential:
// no valid access token is needed, but one that is sent must be the same
// user's.
func (s *Sessions) refresh(w http.ResponseWriter, r *http.Request) error {
	outcome := "error"
	defer func() { s.refreshes.WithLabelValues(outcome).Inc() }()
	var in refreshRequest
	if err := httpx.DecodeJSON(r, httpx.MaxJSONBody, &in); err != nil {
		outcome = "bad_request"
		return err
	}
	if in.RefreshToken == "" {
		outcome = "invalid_refresh_token"
		return badRefreshToken(nil)
	}
	var bearer *Identity
	if tok, present := BearerToken(r); present && tok != "" {
		// An expired or otherwise invalid access token is no reason to
		// refuse: refreshing is how an expired session recovers.
		bearer, _ = s.Verifier.Verify(r.Context(), tok)
	}

	res, err := s.cognitoRefresh(r.Context(), in.RefreshToken)
	if err != nil {
		var he *httpx.Error
		if errors.As(err, &he) && he.Status == http.StatusUnauthorized {
			outcome = "invalid_refresh_token"
		}
		return err
	}
	access := aws.ToString(res.AccessToken)
	id, err := s.Verifier.Verify(r.Context(), access)
	if err != nil {
		// Cognito handed out a token this daemon does not trust: the
		// issuer or client configuration disagrees with the pool's.
		return &httpx.Error{Status: http.StatusBadGateway, Code: "identity_provider_error",
			Msg: "the sign-in service returned a token this server does not accept (a server configuration problem; its log says more)",
			Err: fmt.Errorf("the refreshed access token failed verification (does the issuer or client configuration match the pool?): %w", err)}
	}
	if bearer != nil && bearer.Sub != id.Sub {
		outcome = "forbidden"
		return &httpx.Error{Status: http.StatusForbidden, Code: "forbidden", Msg: "the refresh token belongs to another user than the bearer token"}
	}
	httpx.SetUserTag(r.Context(), id.Tag())
	ans := refreshAnswer{
		AccessToken: access, IDToken: aws.ToString(res.IdToken), ExpiresIn: res.ExpiresIn, TokenType: "Bearer",
		UserID: id.Sub, Bucket: s.Bucket, Region: s.Region, Prefix: id.Prefix(),
	}
	if ans.ExpiresIn <= 0 { // cognito-local leaves it out
		ans.ExpiresIn = int32(max(0, time.Until(id.Expires)/time.Second))
	}
	if s.Rotation {
		ans.RefreshToken = aws.ToString(res.RefreshToken)
	}
	if s.STS != nil {
		creds, err := s.AssumeRole(r.Context(), id.Sub)
		if err != nil {
			// No half answer: without the credentials the client asked for,
			// it gets no tokens either and tries again.
			return err
		}
		ans.Credentials = creds
	}
	outcome = "ok"
	return httpx.WriteJSON(w, http.StatusOK, ans)
}

// cognitoRefresh trades a refresh token for new tokens.
func (s *Sessions) cognitoRefresh(ctx context.Context, refreshToken string) (*ciptypes.AuthenticationResultType, error) {
	var res *ciptypes.AuthenticationResultType
	var err error
	if s.Rotation {
		var out *cip.GetTokensFromRefreshTokenOutput
		out, err = s.Cognito.GetTokensFromRefreshToken(ctx, &cip.GetTokensFromRefreshTokenInput{ClientId: &s.ClientID, RefreshToken: &refreshToken})
		if err == nil {
			res = out.AuthenticationResult
		}
	} else {
		var out *cip.InitiateAuthOutput
		out, err = s.Cognito.InitiateAuth(ctx, &cip.InitiateAuthInput{
			ClientId: &s.ClientID, AuthFlow: ciptypes.AuthFlowTypeRefreshTokenAuth,
			AuthParameters: map[string]string{"REFRESH_TOKEN": refreshToken},
		})
		if err == nil {
			res = out.AuthenticationResult
		}
	}
	if err != nil {
		return nil, cognitoError(err)
	}
	if res == nil || res.AccessToken == nil {
		return nil, &httpx.Error{Status: http.StatusBadGateway, Code: "identity_provider_error",
			Msg: "the identity provider answered the refresh without tokens (a challenge?)", RetryAfter: 5}
	}
	return res, nil
}

// cognitoError maps a Cognito failure to an answer.
func cognitoError(err error) error {
	var ae smithy.APIError
	if errors.As(err, &ae) {
		switch ae.ErrorCode() {
		case "NotAuthorizedException", "UserNotFoundException", "UserNotConfirmedException", "PasswordResetRequiredException":
			return badRefreshToken(err)
		case "TooManyRequestsException", "InternalErrorException", "LimitExceededException":
			return &httpx.Error{Status: http.StatusServiceUnavailable, Code: "identity_provider_unavailable", Msg: "the identity provider is busy; try again shortly", Err: err, RetryAfter: 5}
		}
	}
	var re *awshttp.ResponseError
	if errors.As(err, &re) && re.HTTPStatusCode() != 0 && re.HTTPStatusCode() < 500 {
		return &httpx.Error{Status: http.StatusBadGateway, Code: "identity_provider_error", Msg: "the identity provider refused the request", Err: err, RetryAfter: 5}
	}
	return &httpx.Error{Status: http.StatusServiceUnavailable, Code: "identity_provider_unavailable", Msg: "the identity provider is unreachable; try again shortly", Err: err, RetryAfter: 5}
}

// AssumeRole gets the user's one-hour credentials, narrowed to their prefix.
func (s *Sessions) AssumeRole(ctx context.Context, sub string) (*Credentials, error) {
	d := s.SessionDuration
	if d == 0 {
		d = time.Hour
	}
	in := &sts.AssumeRoleInput{
		RoleArn:         &s.RoleARN,
		RoleSessionName: aws.String(RoleSessionName(sub)),
		DurationSeconds: aws.Int32(int32(d / time.Second)),
		Policy:          aws.String(SessionPolicy(Bucket{Name: s.Bucket, Region: s.Region, KMSKeyARN: s.KMSKeyARN}, sub)),
	}
	if len(sub) >= 2 && len(sub) <= 64 {
		in.SourceIdentity = aws.String(sub) // STS's limits; Cognito subs are UUIDs
	}
	out, err := s.STS.AssumeRole(ctx, in)
	if err != nil {
		return nil, &httpx.Error{Status: http.StatusBadGateway, Code: "sts_error",
			Msg: "temporary credentials could not be issued; try again shortly", Err: fmt.Errorf("assuming %s: %w", s.RoleARN, err), RetryAfter: 5}
	}
	c := out.Credentials
	if c == nil || c.AccessKeyId == nil {
		return nil, &httpx.Error{Status: http.StatusBadGateway, Code: "sts_error", Msg: "STS answered without credentials", RetryAfter: 5}
	}
	return &Credentials{
		AccessKeyID: aws.ToString(c.AccessKeyId), SecretAccessKey: aws.ToString(c.SecretAccessKey),
		SessionToken: aws.ToString(c.SessionToken), Expiration: aws.ToTime(c.Expiration).UTC().Format(time.RFC3339),
	}, nil
}

// logout is POST /api/auth/logout: the refresh token is revoked at Cognito
// and the sign-in's tokens are refused here until they expire.
func (s *Sessions) logout(w http.ResponseWriter, r *http.Request) error {
	outcome := "error"
	defer func() { s.logouts.WithLabelValues(outcome).Inc() }()
	id := MustFromContext(r.Context())
	var in refreshRequest
	if r.ContentLength != 0 {
		if err := httpx.DecodeJSON(r, httpx.MaxJSONBody, &in); err != nil {
			outcome = "bad_request"
			return err
		}
	}
	// Refuse the sign-in's tokens first: even if Cognito is down, this
	// session is over here.
	if err := s.Revocations.Revoke(id, s.now()); err != nil {
		return fmt.Errorf("revoking the access token: %w", err)
	}
	if in.RefreshToken != "" {
		_, err := s.Cognito.RevokeToken(r.Context(), &cip.RevokeTokenInput{ClientId: &s.ClientID, Token: &in.RefreshToken})
		if err != nil {
			var ae smithy.APIError
			if !errors.As(err, &ae) || ae.ErrorCode() == "InternalErrorException" || ae.ErrorCode() == "TooManyRequestsException" {
				return cognitoError(err)
			}
			// An unknown, expired or already revoked refresh token is as
			// logged out as it gets.
			httpx.LoggerFrom(r.Context()).Info("refresh token not revoked", "code", ae.ErrorCode())
		}
	}
	outcome = "ok"
	w.WriteHeader(http.StatusNoContent)
	return nil
}
