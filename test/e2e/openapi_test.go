package e2e

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"net/http"
	"strings"
	"testing"

	"github.com/getkin/kin-openapi/openapi3"
	"github.com/getkin/kin-openapi/openapi3filter"
	"github.com/getkin/kin-openapi/routers"
	"github.com/getkin/kin-openapi/routers/legacy"

	"github.com/usher-gg/usher/internal/config"
)

// TestOpenAPI checks docs/openapi.yaml against real answers of a running `usher dev`: the
// document is valid OpenAPI 3.1, and every answer below (successes and errors) matches it.
// Requests we send on purpose broken are not validated; their answers are.
func TestOpenAPI(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	loader := openapi3.NewLoader()
	doc, err := loader.LoadFromFile("../../docs/openapi.yaml")
	if err != nil {
		t.Fatalf("load docs/openapi.yaml: %v", err)
	}
	if err := doc.Validate(ctx); err != nil {
		t.Fatalf("docs/openapi.yaml is not valid: %v", err)
	}
	router, err := legacy.NewRouter(doc)
	if err != nil {
		t.Fatal(err)
	}
	h := startUsher(t, func(c *config.Config) { c.Games[0].MaxPlayers = 2 })
	v := &apiValidator{t: t, h: h, router: router}

	alice := v.json(200, true, "POST", "/request_token", "", `{"name":"Alice"}`)
	v.json(200, true, "POST", "/request_token", "", "")
	v.json(400, false, "POST", "/request_token", "", `{"name":"`+strings.Repeat("x", 40)+`"}`)
	v.json(400, false, "POST", "/request_token", "", `{"nome":"typo"}`)
	bob := v.json(200, true, "POST", "/request_token", "", `{"name":"Bob"}`)
	carol := v.json(200, true, "POST", "/request_token", "", `{"name":"Carol"}`)
	tokA, tokB, tokC := alice["token"].(string), bob["token"].(string), carol["token"].(string)

	room := v.json(200, true, "POST", "/join", tokA, `{"game":"example"}`)["room"].(string)
	v.json(200, true, "POST", "/join", tokB, `{"game":"example","room":"`+strings.ToLower(room)+`"}`)
	v.json(409, true, "POST", "/join", tokC, `{"game":"example","room":"`+room+`"}`)
	v.json(200, true, "POST", "/join", tokC, `{"game":"example","quick":true}`)
	v.json(404, true, "POST", "/join", tokC, `{"game":"example","room":"ZZZZ"}`)
	v.json(404, true, "POST", "/join", tokC, `{"game":"nope"}`)
	v.json(400, false, "POST", "/join", tokC, `{"game":"example","room":"0OIL"}`)
	v.json(400, false, "POST", "/join", tokC, `{"game":"example","room":"K7QX","quick":true}`)
	v.json(401, false, "POST", "/join", "", `{"game":"example"}`)
	v.json(401, false, "POST", "/join", "forged", `{"game":"example"}`)
	v.json(200, true, "GET", "/games", "", "")
	v.json(200, true, "GET", "/readyz", "", "")
	v.raw(200, true, "GET", "/healthz", nil)
	v.raw(204, true, "OPTIONS", "/join", http.Header{"Origin": {"http://localhost:5173"}, "Access-Control-Request-Method": {"POST"}})
	ws := http.Header{"Connection": {"Upgrade"}, "Upgrade": {"websocket"}, "Sec-WebSocket-Version": {"13"},
		"Sec-WebSocket-Key": {"dGhlIHNhbXBsZSBub25jZQ=="}, "Origin": {"http://localhost:5173"}}
	v.raw(401, true, "GET", "/connect?ticket=nope", ws)
	v.raw(400, true, "GET", "/connect?ticket=nope", nil)
	bad := ws.Clone()
	bad.Set("Origin", "https://evil.example")
	v.raw(403, true, "GET", "/connect?ticket=nope", bad)

	// 429 with Retry-After, from an Usher with a tiny token rate.
	limited := startUsher(t, func(c *config.Config) { c.TokenRate = 1 })
	lv := &apiValidator{t: t, h: limited, router: router}
	lv.json(200, true, "POST", "/request_token", "", "")
	lv.json(429, true, "POST", "/request_token", "", "")
}

type apiValidator struct {
	t      *testing.T
	h      *harness
	router routers.Router
}

// json sends a JSON request, checks the status, validates the answer (and the request, when
// validReq) against the document, and returns the decoded answer.
func (v *apiValidator) json(status int, validReq bool, method, path, token, body string) map[string]any {
	v.t.Helper()
	hdr := http.Header{}
	if body != "" {
		hdr.Set("Content-Type", "application/json")
	}
	if token != "" {
		hdr.Set("Authorization", "Bearer "+token)
	}
	b := v.send(status, validReq, method, path, body, hdr)
	var out map[string]any
	if len(b) > 0 && status/100 == 2 {
		if err := jsonUnmarshal(b, &out); err != nil {
			v.t.Fatalf("%s %s: %v", method, path, err)
		}
	}
	return out
}

// raw sends a request with headers and no body.
func (v *apiValidator) raw(status int, validReq bool, method, path string, hdr http.Header) {
	v.t.Helper()
	if hdr == nil {
		hdr = http.Header{}
	}
	v.send(status, validReq, method, path, "", hdr)
}

func (v *apiValidator) send(status int, validReq bool, method, path, body string, hdr http.Header) []byte {
	v.t.Helper()
	ctx := context.Background()
	req, err := http.NewRequest(method, v.h.base+path, strings.NewReader(body))
	if err != nil {
		v.t.Fatal(err)
	}
	req.Header = hdr
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		v.t.Fatalf("%s %s: %v", method, path, err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != status {
		v.t.Fatalf("%s %s %s: status %d, want %d: %s", method, path, body, resp.StatusCode, status, b)
	}
	// Route and validate against the document (the request rebuilt, its body already sent).
	vreq, _ := http.NewRequest(method, v.h.base+path, bytes.NewReader([]byte(body)))
	vreq.Header = hdr
	route, params, err := v.router.FindRoute(vreq)
	if err != nil {
		v.t.Fatalf("%s %s: not in docs/openapi.yaml: %v", method, path, err)
	}
	in := &openapi3filter.RequestValidationInput{Request: vreq, PathParams: params, Route: route,
		Options: &openapi3filter.Options{AuthenticationFunc: openapi3filter.NoopAuthenticationFunc}}
	if validReq {
		if err := openapi3filter.ValidateRequest(ctx, in); err != nil {
			v.t.Errorf("%s %s %s: the request does not match docs/openapi.yaml: %v", method, path, body, err)
		}
	}
	out := &openapi3filter.ResponseValidationInput{RequestValidationInput: in, Status: resp.StatusCode, Header: resp.Header,
		Options: &openapi3filter.Options{IncludeResponseStatus: true}}
	out.SetBodyBytes(b)
	if err := openapi3filter.ValidateResponse(ctx, out); err != nil {
		v.t.Errorf("%s %s %s: the answer %d %s does not match docs/openapi.yaml: %v", method, path, body, resp.StatusCode, b, err)
	}
	return b
}

func jsonUnmarshal(b []byte, v any) error { return json.Unmarshal(b, v) }
