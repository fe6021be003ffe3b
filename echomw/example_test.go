package echomw_test

import (
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"

	"github.com/labstack/echo/v4"

	"github.com/floodgate-go/floodgate/echomw"
	"github.com/floodgate-go/floodgate/limiter"
	"github.com/floodgate-go/floodgate/nethttpmw"
)

func Example() {
	l, err := limiter.New(limiter.PerMinute(1))
	if err != nil {
		panic(err)
	}
	defer l.Close()
	g, err := nethttpmw.NewGate(l) // nethttpmw's options, if any, go here
	if err != nil {
		panic(err)
	}
	e := echo.New()
	e.Use(echomw.FromGate(g, echomw.Config{Skipper: func(c echo.Context) bool { return c.Path() == "/healthz" }}))
	e.GET("/hello", func(c echo.Context) error { return c.String(http.StatusOK, "hello") })

	for range 2 {
		w := httptest.NewRecorder()
		e.ServeHTTP(w, httptest.NewRequest("GET", "/hello", nil))
		fmt.Println(w.Code, w.Header().Get("RateLimit"), w.Header().Values("Retry-After"), w.Body.String())
	}
	// Output:
	// 200 "default";r=0;t=60 [] hello
	// 429 "default";r=0;t=60 [60] rate limit exceeded
}

// Limit per user after an authentication middleware, with Echo's own
// hooks: the key function reads what that middleware stored in the
// context, and a request it did not authenticate gets 400.
func ExampleConfig() {
	l, err := limiter.New(limiter.PerMinute(1))
	if err != nil {
		panic(err)
	}
	defer l.Close()
	g, err := nethttpmw.NewGate(l, nethttpmw.WithPolicyName("per-user"))
	if err != nil {
		panic(err)
	}
	e := echo.New()
	e.Logger.SetOutput(io.Discard)                       // echomw logs the 400's cause with Echo's logger
	e.Use(func(next echo.HandlerFunc) echo.HandlerFunc { // stands in for authentication
		return func(c echo.Context) error {
			if u := c.Request().Header.Get("X-User"); u != "" {
				c.Set("user", u)
			}
			return next(c)
		}
	})
	e.Use(echomw.FromGate(g, echomw.Config{
		KeyFunc: func(c echo.Context) (string, error) {
			if u, ok := c.Get("user").(string); ok {
				return "user|" + u, nil
			}
			return "", errors.New("no user") // 400
		},
	}))
	e.GET("/orders", func(c echo.Context) error { return c.String(http.StatusOK, "orders") })

	for _, user := range []string{"ann", "ann", "bob", ""} {
		r := httptest.NewRequest("GET", "/orders", nil)
		r.Header.Set("X-User", user)
		w := httptest.NewRecorder()
		e.ServeHTTP(w, r)
		fmt.Println(user, w.Code)
	}
	// Output:
	// ann 200
	// ann 429
	// bob 200
	//  400
}
