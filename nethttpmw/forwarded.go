package nethttpmw

import (
	"net/netip"
	"strings"
)

// Limits that bound the work spent on forwarding headers, whatever their
// size. A hop longer than maxHopLen cannot be an address; at most maxHops
// hops are examined per request.
const (
	maxHopLen = 256
	maxHops   = 32
)

// hopState is what hopScanner.next found.
type hopState int

const (
	hopAddr hopState = iota // an address
	hopBad                  // a hop that is not a usable address: obfuscated, unknown, garbage or too long
	hopEnd                  // no hops left
)

// hopScanner yields the hops of a forwarding header from the right: the
// last header line first, each line from its end. It never allocates and
// looks at no more than maxHopLen+1 bytes per hop, so a 1 MB header costs no
// more than a short one.
type hopScanner struct {
	lines     []string
	end       int  // lines[len(lines)-1][:end] is not yet scanned
	forwarded bool // RFC 7239 Forwarded syntax rather than a plain address list
	empty     int  // empty elements skipped so far
	scanned   int  // bytes looked at so far, for the tests of the bounds
}

func newHopScanner(lines []string, forwarded bool) hopScanner {
	s := hopScanner{lines: lines, forwarded: forwarded}
	if len(lines) > 0 {
		s.end = len(lines[len(lines)-1])
	}
	return s
}

// next returns the next hop to the left.
func (s *hopScanner) next() (netip.Addr, hopState) {
	for len(s.lines) > 0 {
		line := s.lines[len(s.lines)-1][:s.end]
		elem, start, ok := lastElement(line)
		s.scanned += len(elem) + 1
		if !ok {
			s.scanned += maxHopLen
			return netip.Addr{}, hopBad
		}
		if start > 0 {
			s.end = start - 1 // skip the comma
		} else {
			s.lines = s.lines[:len(s.lines)-1]
			if len(s.lines) > 0 {
				s.end = len(s.lines[len(s.lines)-1])
			}
		}
		elem = trimOWS(elem)
		if elem == "" {
			// Empty list elements are allowed and carry nothing (RFC 9110,
			// 5.6.1), but a megabyte of commas must not cost a megabyte of work.
			if s.empty++; s.empty > maxHops {
				return netip.Addr{}, hopBad
			}
			continue
		}
		if s.forwarded {
			elem, ok = forwardedFor(elem)
			if !ok {
				return netip.Addr{}, hopBad
			}
		}
		if a, ok := parseNode(elem); ok {
			return a, hopAddr
		}
		return netip.Addr{}, hopBad
	}
	return netip.Addr{}, hopEnd
}

// lastElement returns the text after the last comma of line that is not
// inside a quoted string, and where it starts. ok is false if that element
// is longer than maxHopLen.
func lastElement(line string) (elem string, start int, ok bool) {
	inQuote := false
	for i := len(line) - 1; i >= 0; i-- {
		if len(line)-i > maxHopLen {
			return "", 0, false
		}
		switch line[i] {
		case '"':
			if !escaped(line, i) {
				inQuote = !inQuote
			}
		case ',':
			if !inQuote {
				return line[i+1:], i + 1, true
			}
		}
	}
	return line, 0, true
}

// escaped reports whether line[i] is preceded by an odd number of
// backslashes. It looks back at most maxHopLen bytes.
func escaped(line string, i int) bool {
	n := 0
	for j := i - 1; j >= 0 && line[j] == '\\' && n <= maxHopLen; j-- {
		n++
	}
	return n%2 == 1
}

// forwardedFor returns the value of the for parameter of one RFC 7239
// forwarded-element ("for=192.0.2.60;proto=http;by=203.0.113.43"), with
// the quotes of a quoted-string removed.
func forwardedFor(elem string) (string, bool) {
	for elem != "" {
		var pair string
		pair, elem, _ = strings.Cut(elem, ";")
		name, value, found := strings.Cut(trimOWS(pair), "=")
		if !found || !strings.EqualFold(name, "for") {
			continue
		}
		if len(value) >= 2 && value[0] == '"' && value[len(value)-1] == '"' {
			value = value[1 : len(value)-1]
		}
		return value, true
	}
	return "", false
}

// parseNode parses one hop: an IPv4 or IPv6 address, optionally with a port
// ("192.0.2.1:4711", "[2001:db8::1]:4711", "[2001:db8::1]"). Obfuscated
// identifiers ("_hidden"), "unknown" and anything else are not addresses.
// The address is normalised as the key needs it.
func parseNode(s string) (netip.Addr, bool) {
	if len(s) > 0 && s[0] == '[' {
		end := strings.IndexByte(s, ']')
		if end < 0 || (end+1 < len(s) && s[end+1] != ':') {
			return netip.Addr{}, false
		}
		a, err := netip.ParseAddr(s[1:end])
		if err != nil || !a.Is6() {
			return netip.Addr{}, false
		}
		return normalize(a), true
	}
	if a, err := netip.ParseAddr(s); err == nil {
		return normalize(a), true
	}
	if ap, err := netip.ParseAddrPort(s); err == nil && ap.Addr().Is4() {
		return normalize(ap.Addr()), true
	}
	return netip.Addr{}, false
}

// parseRemoteAddr parses http.Request.RemoteAddr, which net/http sets to
// "IP:port"; a bare IP is accepted too.
func parseRemoteAddr(s string) (netip.Addr, bool) {
	if len(s) > maxHopLen {
		return netip.Addr{}, false
	}
	if ap, err := netip.ParseAddrPort(s); err == nil {
		return normalize(ap.Addr()), true
	}
	if a, err := netip.ParseAddr(s); err == nil {
		return normalize(a), true
	}
	return netip.Addr{}, false
}

// normalize drops an IPv6 zone and turns an IPv4-mapped IPv6 address into
// the IPv4 address it maps, so that one client has one key however it is
// written.
func normalize(a netip.Addr) netip.Addr {
	return a.WithZone("").Unmap()
}

func trimOWS(s string) string {
	for len(s) > 0 && (s[0] == ' ' || s[0] == '\t') {
		s = s[1:]
	}
	for len(s) > 0 && (s[len(s)-1] == ' ' || s[len(s)-1] == '\t') {
		s = s[:len(s)-1]
	}
	return s
}
