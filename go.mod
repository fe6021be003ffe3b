module github.com/floodgate-go/floodgate

go 1.26.0

require (
	github.com/alicebob/miniredis/v2 v2.35.0
	github.com/labstack/echo/v4 v4.13.2
	github.com/redis/go-redis/v9 v9.19.0
	go.uber.org/goleak v1.1.11
	golang.org/x/sys v0.30.0
	golang.org/x/time v0.8.0
)

require (
	github.com/cespare/xxhash/v2 v2.3.0 // indirect
	github.com/labstack/gommon v0.4.2 // indirect
	github.com/mattn/go-colorable v0.1.13 // indirect
	github.com/mattn/go-isatty v0.0.20 // indirect
	github.com/valyala/bytebufferpool v1.0.0 // indirect
	github.com/valyala/fasttemplate v1.2.2 // indirect
	github.com/yuin/gopher-lua v1.1.1 // indirect
	go.uber.org/atomic v1.11.0 // indirect
	golang.org/x/crypto v0.31.0 // indirect
	golang.org/x/net v0.32.0 // indirect
	golang.org/x/text v0.21.0 // indirect
)
