package httpapi

import (
	"net"
	"net/http"
	"net/netip"
	"strconv"
	"strings"
)

// checkHost refuses a request that reached a loopback address under a
// Host name that is not loopback. A web page the operator visits can
// rebind its own name to 127.0.0.1 (DNS rebinding) and, with the browser's
// blessing as same-origin, read whatever a loopback listener without a
// token serves, the whole database included. Such a request still names
// the attacker's host, so it is answered 421 with nothing read. A reverse
// proxy that forwards its public name lists it in allowedHosts.
//
// Requests without a connection (handlers called in-process) and those
// that arrived on a non-loopback address pass: there the token guards.
func (s *Server) checkHost(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if local, ok := r.Context().Value(http.LocalAddrContextKey).(net.Addr); ok && isLoopbackAddr(local) &&
			!s.hostAllowed(r.Host) {
			s.writeError(w, r, &apiError{status: http.StatusMisdirectedRequest, code: "misdirected_request",
				msg: "host " + quoteHost(r.Host) + " is not served on this loopback listener " +
					"(use localhost, 127.0.0.1 or [::1], or add the name to http.allowed_hosts)"})
			return
		}
		next.ServeHTTP(w, r)
	})
}

// hostAllowed reports whether a Host header names loopback or one of the
// configured names, with any port.
func (s *Server) hostAllowed(host string) bool {
	name := hostName(host)
	if name == "" {
		return false
	}
	if name == "localhost" {
		return true
	}
	if ip, err := netip.ParseAddr(name); err == nil && ip.Unmap().IsLoopback() && ip.Zone() == "" {
		return true
	}
	for _, h := range s.allowedHosts {
		if name == h {
			return true
		}
	}
	return false
}

// hostName is a Host header's name without port or brackets, lowercased
// and without a trailing dot ("LOCALHOST.:80" names localhost). It is ""
// when the header is not a plain host[:port].
func hostName(host string) string {
	name := host
	if h, port, err := net.SplitHostPort(host); err == nil {
		if !allDigits(port) {
			return ""
		}
		name = h
	} else if strings.ContainsAny(host, "[]") {
		// "[::1]" without a port: SplitHostPort wants one.
		name = strings.TrimSuffix(strings.TrimPrefix(host, "["), "]")
	}
	if strings.ContainsAny(name, "/@?#[] \t\\") {
		return ""
	}
	return strings.TrimSuffix(strings.ToLower(name), ".")
}

func allDigits(s string) bool {
	for _, c := range s {
		if c < '0' || c > '9' {
			return false
		}
	}
	return len(s) <= 5
}

// NormalizeHost is the form an http.allowed_hosts entry is compared in: a
// host name or IP address, any case, without a port. It returns "" for a
// value that is not one (a URL, a path, host:port).
func NormalizeHost(h string) string {
	h = strings.TrimSpace(h)
	if strings.Contains(h, ":") && !strings.HasPrefix(h, "[") {
		if _, err := netip.ParseAddr(h); err != nil {
			return "" // host:port or a scheme
		}
	}
	if strings.HasPrefix(h, "[") && !strings.HasSuffix(h, "]") {
		return ""
	}
	return hostName(h)
}

func isLoopbackAddr(a net.Addr) bool {
	if ta, ok := a.(*net.TCPAddr); ok {
		return ta.IP.IsLoopback()
	}
	ap, err := netip.ParseAddrPort(a.String())
	return err == nil && ap.Addr().Unmap().IsLoopback()
}

// quoteHost quotes a client's Host value for an error message, cut short:
// it is the client's own input, never a secret.
func quoteHost(h string) string {
	if len(h) > 100 {
		h = h[:100]
	}
	return strconv.Quote(h)
}
