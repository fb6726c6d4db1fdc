//! Sending one notification request to a URL a user gave: the only outbound calls to
//! addresses we do not choose, so they are held to what a public push service or webhook is.
//!
//! - The host is resolved here and every address it resolves to is checked; the connection goes
//!   to a checked address (never a second resolution), so a name cannot point elsewhere between
//!   the check and the connect. Loopback, private, link-local, shared, documentation,
//!   multicast and unspecified addresses are refused (IPv4-mapped IPv6 ones too), unless
//!   development allows them (`NOTIFY_ALLOW_PRIVATE`).
//! - https only (plain http only where private addresses are allowed); TLS against the
//!   webpki roots, the URL's host as the name.
//! - One request per connection, no redirects followed (a 3xx is a failure), a connect and a
//!   total timeout. The response body is not read.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::sync::Arc;
use std::time::Duration;

use http_body_util::Full;
use hyper::body::Bytes;
use hyper_util::rt::TokioIo;
use tokio::net::TcpStream;
use tokio_rustls::rustls::pki_types::ServerName;
use tokio_rustls::rustls::{ClientConfig, RootCertStore};
use tokio_rustls::TlsConnector;

/// Where a delivery may go and how long it may take.
#[derive(Debug, Clone)]
pub struct Policy {
    /// Loopback, private and link-local addresses and plain http are allowed (development).
    pub allow_private: bool,
    /// Connecting.
    pub connect_timeout: Duration,
    /// The whole request.
    pub timeout: Duration,
}

/// What the far end answered.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Answer {
    /// The status code.
    pub status: u16,
    /// `Retry-After` in seconds, when given as a number.
    pub retry_after: Option<u64>,
}

/// Why nothing was answered.
#[derive(Debug, thiserror::Error)]
pub enum SendError {
    /// The URL may not be reached (a refused address or scheme): never retried.
    #[error("refused: {0}")]
    Refused(&'static str),
    /// Resolving, connecting, TLS or the exchange failed, or took too long: retried.
    #[error("network: {0}")]
    Network(String),
}

/// Checks a URL a user gives before it is stored: its scheme, its length, and a literal
/// address in it (a name is checked when it is resolved, at every delivery).
pub fn check_url(url: &str, allow_private: bool) -> Result<(), &'static str> {
    if url.len() > 2048 {
        return Err("the URL is longer than 2048 characters");
    }
    let uri: http::Uri = url.parse().map_err(|_| "not a URL")?;
    match uri.scheme_str() {
        Some("https") => {}
        Some("http") if allow_private => {}
        _ => return Err("the URL must be https"),
    }
    let host = uri.host().ok_or("the URL has no host")?;
    if let Ok(ip) = host
        .trim_start_matches('[')
        .trim_end_matches(']')
        .parse::<IpAddr>()
    {
        if !allow_private && !is_public(ip) {
            return Err("the URL's address is not a public one");
        }
    }
    Ok(())
}

/// Whether `ip` is an address on the public internet.
pub fn is_public(ip: IpAddr) -> bool {
    match ip {
        IpAddr::V4(v4) => is_public_v4(v4),
        IpAddr::V6(v6) => match v6.to_ipv4_mapped() {
            Some(v4) => is_public_v4(v4),
            None => is_public_v6(v6),
        },
    }
}

fn is_public_v4(ip: Ipv4Addr) -> bool {
    let [a, b, c, _] = ip.octets();
    !(ip.is_unspecified()
        || ip.is_loopback()
        || ip.is_private()
        || ip.is_link_local()
        || ip.is_broadcast()
        || ip.is_multicast()
        || ip.is_documentation()
        || a == 0
        // Shared address space (carrier-grade NAT), 100.64.0.0/10.
        || (a == 100 && (64..128).contains(&b))
        // IETF protocol assignments, 192.0.0.0/24; benchmarking, 198.18.0.0/15.
        || (a == 192 && b == 0 && c == 0)
        || (a == 198 && (18..20).contains(&b))
        // Reserved, 240.0.0.0/4.
        || a >= 240)
}

fn is_public_v6(ip: Ipv6Addr) -> bool {
    let first = ip.segments()[0];
    !(ip.is_unspecified()
        || ip.is_loopback()
        || ip.is_multicast()
        // Unique local fc00::/7, link-local fe80::/10, documentation 2001:db8::/32.
        || (first & 0xfe00) == 0xfc00
        || (first & 0xffc0) == 0xfe80
        || (first == 0x2001 && ip.segments()[1] == 0x0db8)
        // IPv4-compatible and NAT64 prefixes hide an IPv4 address we would not have checked.
        || ip.to_ipv4().is_some()
        || (first == 0x0064 && ip.segments()[1] == 0xff9b))
}

fn tls() -> TlsConnector {
    let roots = RootCertStore {
        roots: webpki_roots::TLS_SERVER_ROOTS.to_vec(),
    };
    let config = ClientConfig::builder()
        .with_root_certificates(roots)
        .with_no_client_auth();
    TlsConnector::from(Arc::new(config))
}

/// Sends `req` under `policy`.
pub async fn send(req: http::Request<Vec<u8>>, policy: &Policy) -> Result<Answer, SendError> {
    tokio::time::timeout(policy.timeout, exchange(req, policy))
        .await
        .map_err(|_| SendError::Network("timed out".to_owned()))?
}

async fn exchange(req: http::Request<Vec<u8>>, policy: &Policy) -> Result<Answer, SendError> {
    let uri = req.uri().clone();
    let https = match uri.scheme_str() {
        Some("https") => true,
        Some("http") if policy.allow_private => false,
        _ => return Err(SendError::Refused("the URL must be https")),
    };
    let host = uri
        .host()
        .ok_or(SendError::Refused("the URL has no host"))?
        .trim_start_matches('[')
        .trim_end_matches(']')
        .to_owned();
    let port = uri.port_u16().unwrap_or(if https { 443 } else { 80 });
    let addrs: Vec<SocketAddr> = tokio::net::lookup_host((host.as_str(), port))
        .await
        .map_err(|e| SendError::Network(format!("resolving: {e}")))?
        .collect();
    if addrs.is_empty() {
        return Err(SendError::Network(
            "the name resolves to nothing".to_owned(),
        ));
    }
    // Every address the name has must be public: one that is not would be a way in.
    if !policy.allow_private && addrs.iter().any(|a| !is_public(a.ip())) {
        return Err(SendError::Refused("the URL's address is not a public one"));
    }
    let mut last = String::new();
    for addr in addrs {
        match tokio::time::timeout(policy.connect_timeout, TcpStream::connect(addr)).await {
            Ok(Ok(tcp)) => {
                let peer = tcp
                    .peer_addr()
                    .map_err(|e| SendError::Network(e.to_string()))?;
                if !policy.allow_private && !is_public(peer.ip()) {
                    return Err(SendError::Refused(
                        "connected to an address that is not public",
                    ));
                }
                return if https {
                    let name = ServerName::try_from(host.clone())
                        .map_err(|_| SendError::Refused("the URL's host is not a TLS name"))?;
                    let stream = tls()
                        .connect(name, tcp)
                        .await
                        .map_err(|e| SendError::Network(format!("tls: {e}")))?;
                    one_request(TokioIo::new(stream), req).await
                } else {
                    one_request(TokioIo::new(tcp), req).await
                };
            }
            Ok(Err(e)) => last = e.to_string(),
            Err(_) => last = "connect timed out".to_owned(),
        }
    }
    Err(SendError::Network(format!("connecting: {last}")))
}

async fn one_request<T>(io: TokioIo<T>, req: http::Request<Vec<u8>>) -> Result<Answer, SendError>
where
    T: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin + Send + 'static,
{
    let (mut sender, conn) = hyper::client::conn::http1::handshake(io)
        .await
        .map_err(|e| SendError::Network(format!("handshake: {e}")))?;
    let driver = tokio::spawn(conn);
    let (mut parts, body) = req.into_parts();
    // The origin form: the path only, and the host in its own header.
    let authority = parts.uri.authority().map(|a| a.as_str().to_owned());
    if let Some(a) = authority {
        let value =
            http::HeaderValue::from_str(&a).map_err(|_| SendError::Refused("a bad host"))?;
        parts.headers.insert(http::header::HOST, value);
    }
    let path = parts
        .uri
        .path_and_query()
        .map_or("/", |p| p.as_str())
        .to_owned();
    parts.uri = path.parse().map_err(|_| SendError::Refused("a bad path"))?;
    let req = http::Request::from_parts(parts, Full::new(Bytes::from(body)));
    let resp = sender
        .send_request(req)
        .await
        .map_err(|e| SendError::Network(format!("request: {e}")))?;
    driver.abort();
    let retry_after = resp
        .headers()
        .get(http::header::RETRY_AFTER)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.trim().parse().ok());
    Ok(Answer {
        status: resp.status().as_u16(),
        retry_after,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_public_addresses_are_public() {
        for private in [
            "127.0.0.1",
            "10.1.2.3",
            "172.16.0.1",
            "192.168.1.1",
            "169.254.169.254",
            "100.64.0.1",
            "0.0.0.0",
            "::1",
            "fe80::1",
            "fd00::1",
            "::ffff:127.0.0.1",
            "::ffff:10.0.0.1",
            "64:ff9b::a00:1",
            "2001:db8::1",
        ] {
            assert!(!is_public(private.parse().expect("ip")), "{private}");
        }
        for public in ["1.1.1.1", "8.8.8.8", "2606:4700::1111"] {
            assert!(is_public(public.parse().expect("ip")), "{public}");
        }
    }

    #[test]
    fn urls_are_checked_before_they_are_stored() {
        assert!(check_url("https://push.example.com/x", false).is_ok());
        assert!(check_url("http://push.example.com/x", false).is_err());
        assert!(check_url("https://127.0.0.1/x", false).is_err());
        assert!(check_url("https://[::1]/x", false).is_err());
        assert!(check_url("https://169.254.169.254/latest", false).is_err());
        assert!(check_url("http://127.0.0.1:8080/x", true).is_ok());
        assert!(check_url("ftp://example.com/x", true).is_err());
        assert!(check_url(&format!("https://e.com/{}", "a".repeat(2050)), false).is_err());
    }
}
