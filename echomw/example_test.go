package echomw_test

import (
	"fmt"
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
	// 429 "default";r=0;t=60 [60] {"message":"rate limit exceeded"}
}
