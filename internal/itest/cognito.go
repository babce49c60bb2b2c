package itest

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"os/exec"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/credentials"
	cip "github.com/aws/aws-sdk-go-v2/service/cognitoidentityprovider"
	ciptypes "github.com/aws/aws-sdk-go-v2/service/cognitoidentityprovider/types"
)

// Cognito is a running cognito-local with one user pool and app client.
type Cognito struct {
	Endpoint string // http://127.0.0.1:PORT
	PoolID   string
	ClientID string
	Issuer   string // http://127.0.0.1:PORT/{PoolID}
	proc     *process
}

// StartCognito starts cognito-local in a temp dir (it keeps its data in
// .cognito/ under its working directory), creates a pool and a public app
// client, and stops it when the test ends.
func StartCognito(tb testing.TB) *Cognito {
	tb.Helper()
	bin := Tool(tb, "cognito-local")
	port := FreePort(tb)
	c := &Cognito{Endpoint: fmt.Sprintf("http://127.0.0.1:%d", port)}
	cmd := exec.Command(bin)
	cmd.Dir = tb.TempDir()
	cmd.Env = append(cmd.Environ(), fmt.Sprintf("PORT=%d", port), "HOST=127.0.0.1")
	c.proc = start(tb, cmd)
	tb.Cleanup(c.proc.Stop)
	if err := waitHTTP(c.Endpoint+"/health", 60*time.Second, c.proc.exited); err != nil {
		tb.Fatalf("cognito-local did not start: %v\n%s", err, c.proc.log.String())
	}
	ctx := context.Background()
	pool, err := c.Client().CreateUserPool(ctx, &cip.CreateUserPoolInput{PoolName: aws.String("hqd-test"), UsernameAttributes: []ciptypes.UsernameAttributeType{ciptypes.UsernameAttributeTypeEmail}})
	if err != nil {
		tb.Fatalf("creating user pool: %v", err)
	}
	c.PoolID = aws.ToString(pool.UserPool.Id)
	client, err := c.Client().CreateUserPoolClient(ctx, &cip.CreateUserPoolClientInput{UserPoolId: &c.PoolID, ClientName: aws.String("hqd-test-client")})
	if err != nil {
		tb.Fatalf("creating app client: %v", err)
	}
	c.ClientID = aws.ToString(client.UserPoolClient.ClientId)
	c.Issuer = c.Endpoint + "/" + c.PoolID
	return c
}

// Client is a Cognito client pointed at cognito-local.
func (c *Cognito) Client() *cip.Client {
	return cip.New(cip.Options{
		Region: "us-east-1", BaseEndpoint: aws.String(c.Endpoint),
		Credentials: credentials.NewStaticCredentialsProvider("local", "local", ""),
	})
}

// Tokens are what a sign-in returns.
type Tokens struct {
	Access, ID, Refresh string
	Sub                 string
}

// SignUp creates a confirmed user and signs them in.
func (c *Cognito) SignUp(tb testing.TB, email, password string) Tokens {
	tb.Helper()
	ctx := context.Background()
	out, err := c.Client().SignUp(ctx, &cip.SignUpInput{ClientId: &c.ClientID, Username: &email, Password: &password,
		UserAttributes: []ciptypes.AttributeType{{Name: aws.String("email"), Value: &email}}})
	if err != nil {
		tb.Fatalf("signing up %s: %v", email, err)
	}
	// cognito-local leaves sign-ups unconfirmed; the real pool sends a code.
	if _, err := c.Client().AdminConfirmSignUp(ctx, &cip.AdminConfirmSignUpInput{UserPoolId: &c.PoolID, Username: &email}); err != nil {
		tb.Fatalf("confirming %s: %v", email, err)
	}
	t := c.SignIn(tb, email, password)
	t.Sub = aws.ToString(out.UserSub)
	return t
}

// SignIn signs a user in with USER_PASSWORD_AUTH.
func (c *Cognito) SignIn(tb testing.TB, email, password string) Tokens {
	tb.Helper()
	auth, err := c.Client().InitiateAuth(context.Background(), &cip.InitiateAuthInput{
		ClientId: &c.ClientID, AuthFlow: ciptypes.AuthFlowTypeUserPasswordAuth,
		AuthParameters: map[string]string{"USERNAME": email, "PASSWORD": password},
	})
	if err != nil {
		tb.Fatalf("signing in %s: %v", email, err)
	}
	r := auth.AuthenticationResult
	return Tokens{Access: aws.ToString(r.AccessToken), ID: aws.ToString(r.IdToken), Refresh: aws.ToString(r.RefreshToken)}
}

// CognitoCall sends one action of Cognito's JSON protocol to endpoint (the
// dev provider, cognito-local, or Cognito) and returns the status and the
// decoded answer.
func CognitoCall(tb testing.TB, endpoint, action string, in any) (int, map[string]any) {
	tb.Helper()
	body, err := json.Marshal(in)
	if err != nil {
		tb.Fatal(err)
	}
	req, _ := http.NewRequest("POST", endpoint, bytes.NewReader(body))
	req.Header.Set("X-Amz-Target", "AWSCognitoIdentityProviderService."+action)
	req.Header.Set("Content-Type", "application/x-amz-json-1.1")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		tb.Fatalf("%s at %s: %v", action, endpoint, err)
	}
	defer resp.Body.Close()
	var out map[string]any
	_ = json.NewDecoder(resp.Body).Decode(&out)
	return resp.StatusCode, out
}
