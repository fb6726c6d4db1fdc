//! Tiered rate limits: per client IP without a session, per session with one, per role on the
//! admin listener. GCRA buckets from `governor`: `limit` requests at once, refilled evenly over
//! the window, so the (limit + 1)-th request inside a window is refused with 429 and
//! `Retry-After`. Every response carries `X-RateLimit-Limit`, `-Remaining` and `-Reset`.
//!
//! Limits are per process; with several api processes behind a balancer a client gets up to N
//! times the limit. Behind a proxy (`TRUST_PROXY`), the client is the right-most
//! `X-Forwarded-For` address that is not one of `TRUSTED_PROXIES` ([`client_ip`]). An IPv6
//! client is its network of `RATE_LIMIT_IPV6_PREFIX` bits (a /64 by default): a host is
//! usually given a whole /64, and counting its addresses one by one would give it 2^64
//! budgets ([`bucket_key`]).
//!
//! A bearer token costs a database look-up unless its session is cached, and a caller
//! without a session can send any number of well-formed made-up ones. So tokens that named no
//! live session are counted per address ([`FailedLookups`], `RATE_LIMIT_ANONYMOUS` per
//! window), and once an address has spent that, its bearer tokens are refused with 429
//! *before* they are looked up. A live session's own look-ups never count there: sessions
//! behind an address that only sends anonymous requests keep working.

use std::collections::HashMap;
use std::net::{IpAddr, Ipv6Addr};
use std::sync::{Arc, Mutex, Weak};
use std::time::{Duration, Instant};

use cdk_common::bitcoin::hashes::{sha256, Hash};
use governor::clock::{Clock, DefaultClock};
use governor::middleware::StateInformationMiddleware;
use governor::state::keyed::DefaultKeyedStateStore;
use governor::{Quota, RateLimiter};
use openpleb_common::config::{Cidr, RateLimits as Limits};
use openpleb_common::db::sessions::{self, Session};
use openpleb_common::mint::ParsedBat;
use poem::http::{HeaderValue, Method, StatusCode};
use poem::{Endpoint, IntoResponse, Request, Response};

use crate::auth::{role_of, DeadBearer, ResolvedSession};
use crate::error::{envelope, ApiError};
use crate::AppState;

type Limiter =
    RateLimiter<String, DefaultKeyedStateStore<String>, DefaultClock, StateInformationMiddleware>;

struct Bucket {
    limiter: Limiter,
    limit: u32,
    per_token: Duration,
}

enum Verdict {
    Allowed {
        limit: u32,
        remaining: u32,
        reset: u64,
    },
    Limited {
        limit: u32,
        retry_after: u64,
    },
}

impl Bucket {
    fn new(limit: u32, window: Duration) -> Self {
        let limit = limit.max(1);
        let per_token = window / limit;
        let quota = Quota::with_period(per_token.max(Duration::from_nanos(1)))
            .unwrap_or_else(|| Quota::per_second(std::num::NonZeroU32::MIN))
            .allow_burst(std::num::NonZeroU32::new(limit).unwrap_or(std::num::NonZeroU32::MIN));
        Self {
            limiter: RateLimiter::keyed(quota).with_middleware::<StateInformationMiddleware>(),
            limit,
            per_token,
        }
    }

    fn check(&self, key: String) -> Verdict {
        match self.limiter.check_key(&key) {
            Ok(snapshot) => {
                let remaining = snapshot.remaining_burst_capacity();
                let used = self.limit.saturating_sub(remaining);
                Verdict::Allowed {
                    limit: self.limit,
                    remaining,
                    reset: (self.per_token * used).as_secs(),
                }
            }
            Err(not_until) => {
                let wait = not_until.wait_time_from(DefaultClock::default().now());
                Verdict::Limited {
                    limit: self.limit,
                    retry_after: wait.as_secs().max(1),
                }
            }
        }
    }
}

/// Bearer tokens that named no live session, per address: a GCRA bucket of its own because it
/// is *read* before the look-up and *charged* only after one fails, which governor's
/// check-and-take cannot do.
struct FailedLookups {
    limit: u32,
    per_token: Duration,
    /// Per address, the theoretical arrival time: when its bucket is full again.
    due: Mutex<HashMap<String, Instant>>,
}

impl FailedLookups {
    fn new(limit: u32, window: Duration) -> Self {
        let limit = limit.max(1);
        Self {
            limit,
            per_token: window / limit,
            due: Mutex::default(),
        }
    }

    /// How long `key` must wait before another of its tokens is looked up, if it must.
    fn wait(&self, key: &str) -> Option<Duration> {
        let due = self.due.lock().unwrap_or_else(|e| e.into_inner());
        let tat = *due.get(key)?;
        // `limit` failures in a row are allowed; the next waits for one to drain.
        let open_at = tat.checked_sub(self.per_token * (self.limit - 1))?;
        open_at.checked_duration_since(Instant::now())
    }

    /// Counts one failed look-up of `key`.
    fn charge(&self, key: &str) {
        let now = Instant::now();
        let mut due = self.due.lock().unwrap_or_else(|e| e.into_inner());
        let tat = due.get(key).copied().unwrap_or(now).max(now) + self.per_token;
        due.insert(key.to_owned(), tat);
    }

    /// Forgets addresses whose bucket is full again.
    fn forget_idle(&self) {
        let now = Instant::now();
        let mut due = self.due.lock().unwrap_or_else(|e| e.into_inner());
        due.retain(|_, tat| *tat > now);
        due.shrink_to_fit();
    }
}

/// The three tiers.
pub struct RateLimiters {
    anonymous: Bucket,
    authenticated: Bucket,
    admin: Bucket,
    failed_lookups: FailedLookups,
    trust_forwarded_for: bool,
    trusted_proxies: Vec<Cidr>,
    ipv6_prefix: u8,
}

impl std::fmt::Debug for RateLimiters {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RateLimiters")
            .field("anonymous", &self.anonymous.limit)
            .field("authenticated", &self.authenticated.limit)
            .field("admin", &self.admin.limit)
            .finish()
    }
}

impl RateLimiters {
    /// Limiters for the configured limits.
    pub fn new(limits: &Limits) -> Arc<Self> {
        let me = Arc::new(Self {
            anonymous: Bucket::new(limits.anonymous, limits.window),
            authenticated: Bucket::new(limits.authenticated, limits.window),
            admin: Bucket::new(limits.admin, limits.window),
            failed_lookups: FailedLookups::new(limits.anonymous, limits.window),
            trust_forwarded_for: limits.trust_forwarded_for,
            trusted_proxies: limits.trusted_proxies.clone(),
            ipv6_prefix: limits.ipv6_prefix,
        });
        if let Ok(rt) = tokio::runtime::Handle::try_current() {
            rt.spawn(forget_idle(Arc::downgrade(&me)));
        }
        me
    }

    /// The client as the limiter keys it: its address (see [`client_ip`]), an IPv6 one
    /// narrowed to its network ([`bucket_key`]).
    pub fn client_ip(&self, req: &Request) -> String {
        let peer = req.remote_addr().as_socket_addr().map(|a| a.ip());
        let forwarded: Vec<&str> = if self.trust_forwarded_for {
            req.headers()
                .get_all("x-forwarded-for")
                .iter()
                .filter_map(|v| v.to_str().ok())
                .collect()
        } else {
            Vec::new()
        };
        match client_ip(peer, &forwarded, &self.trusted_proxies) {
            Some(ip) => bucket_key(ip, self.ipv6_prefix),
            None => "unknown".to_owned(),
        }
    }
}

/// The key of `ip`'s bucket: an IPv4 address as it is, an IPv6 address as its network of
/// `v6_prefix` bits (`2001:db8:1:2::/64`).
pub fn bucket_key(ip: IpAddr, v6_prefix: u8) -> String {
    match ip {
        IpAddr::V4(v4) => v4.to_string(),
        IpAddr::V6(v6) => {
            let bits = u32::from(v6_prefix.min(128));
            let mask = u128::MAX.checked_shl(128 - bits).unwrap_or(0);
            let network = Ipv6Addr::from(u128::from(v6) & mask);
            format!("{network}/{bits}")
        }
    }
}

/// The client's address, for its rate-limit bucket: `peer` (the address that connected)
/// unless `peer` is one of the `trusted` proxies and `forwarded` (the `X-Forwarded-For` header
/// values, in order; empty when `TRUST_PROXY` is off) says more.
///
/// Each proxy appends the address it saw connect, so the entries a trusted proxy wrote are
/// the right-most ones: walking from the right, skip the proxies we trust; the first other
/// address is the client. Everything left of it was written by the client itself and is
/// ignored (taking the left-most entry, as before, let a client pick a fresh bucket per
/// request). When every entry is a trusted proxy, or the entry at that place is not an
/// address, the peer is all that can be believed.
pub fn client_ip(peer: Option<IpAddr>, forwarded: &[&str], trusted: &[Cidr]) -> Option<IpAddr> {
    let peer = peer.map(|p| p.to_canonical());
    let is_trusted = |ip: IpAddr| trusted.iter().any(|c| c.contains(ip));
    // A client that reaches us directly writes whatever header it likes.
    if !peer.is_some_and(is_trusted) {
        return peer;
    }
    let entries = forwarded.iter().flat_map(|v| v.split(',')).map(str::trim);
    for entry in entries.rev().filter(|e| !e.is_empty()) {
        // Bare addresses; IPv6 may come bracketed (`[2001:db8::1]`).
        let bare = entry.trim_start_matches('[').trim_end_matches(']');
        match bare.parse::<IpAddr>().map(|ip| ip.to_canonical()) {
            Ok(ip) if is_trusted(ip) => continue,
            Ok(ip) => return Some(ip),
            Err(_) => return peer,
        }
    }
    peer
}

/// Drops buckets that have refilled completely, so memory follows active clients only.
async fn forget_idle(limiters: Weak<RateLimiters>) {
    let mut tick = tokio::time::interval(Duration::from_secs(60));
    loop {
        tick.tick().await;
        let Some(l) = limiters.upgrade() else { return };
        for bucket in [&l.anonymous, &l.authenticated, &l.admin] {
            bucket.limiter.retain_recent();
            bucket.limiter.shrink_to_fit();
        }
        l.failed_lookups.forget_idle();
    }
}

fn bearer(req: &Request) -> Option<&str> {
    req.headers()
        .get(poem::http::header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "))
        .map(str::trim)
}

/// What a bearer token turned out to be.
enum Bearer {
    /// A live session's.
    Live(Session),
    /// Looked up: no live session (the flag: one that ended).
    Dead(bool),
    /// Not looked up (not a BAT, or the database failed): the checker decides.
    Unknown,
    /// Not looked up: its address has sent too many unknown ones; retry after this many s.
    Refused(u64),
}

/// The live session of `token`; for a read (`cached`), one looked up a moment ago may do
/// ([`crate::session_cache`]). A look-up needs the address `client` to have failed fewer
/// than its budget of look-ups ([`FailedLookups`]); a failed one is charged to it.
async fn live_session(state: &AppState, token: &str, cached: bool, client: &str) -> Bearer {
    let Ok(bat) = ParsedBat::parse(token) else {
        // Known without a look-up; counted as anonymous like any request without a session.
        return Bearer::Unknown;
    };
    if cached {
        if let Some(session) = state.sessions.get(&bat.hash) {
            return Bearer::Live(session);
        }
    }
    let failed = &state.rate_limits.failed_lookups;
    if let Some(wait) = failed.wait(client) {
        return Bearer::Refused(wait.as_secs().max(1));
    }
    let stamp = state.sessions.stamp();
    let session = match sessions::by_bat(&state.ctx.pool, &bat.hash).await {
        Ok(Some(s)) if s.ended_at.is_none() && s.expires_at > chrono::Utc::now() => s,
        Ok(found) => {
            failed.charge(client);
            return Bearer::Dead(found.is_some());
        }
        // The checker looks again and answers for the database; not the caller's doing.
        Err(_) => return Bearer::Unknown,
    };
    if cached {
        state.sessions.put(bat.hash, session.clone(), stamp);
    }
    Bearer::Live(session)
}

fn with_headers(mut resp: Response, verdict: &Verdict) -> Response {
    let headers = resp.headers_mut();
    let (limit, remaining, reset) = match *verdict {
        Verdict::Allowed {
            limit,
            remaining,
            reset,
        } => (limit, remaining, reset),
        Verdict::Limited { limit, retry_after } => (limit, 0, retry_after),
    };
    headers.insert("x-ratelimit-limit", HeaderValue::from(limit));
    headers.insert("x-ratelimit-remaining", HeaderValue::from(remaining));
    headers.insert("x-ratelimit-reset", HeaderValue::from(reset));
    resp
}

async fn finish<E: Endpoint>(next: &E, req: Request, verdict: Verdict) -> poem::Result<Response> {
    if let Verdict::Limited { retry_after, .. } = verdict {
        let mut err = ApiError::new(
            StatusCode::TOO_MANY_REQUESTS,
            "rate_limited",
            format!("too many requests; retry in {retry_after} s"),
        );
        err.retry_after = Some(retry_after);
        return Ok(with_headers(err.to_response(), &verdict));
    }
    let resp = match next.call(req).await {
        Ok(r) => r.into_response(),
        Err(e) => {
            // Keep the matched route for the HTTP metrics (observe.rs) across the conversion.
            let route = e.data::<poem::PathPattern>().cloned();
            let mut resp = envelope(e).await;
            if let Some(route) = route {
                resp.set_data(route);
            }
            resp
        }
    };
    Ok(with_headers(resp, &verdict))
}

/// The public listener's limiter: a live session's own bucket, else the client IP's.
pub async fn public<E: Endpoint>(next: E, mut req: Request) -> poem::Result<Response> {
    let state = req
        .data::<AppState>()
        .cloned()
        .ok_or_else(|| ApiError::internal("application state missing"))?;
    let limiters = state.rate_limits.clone();
    let read = matches!(*req.method(), Method::GET | Method::HEAD);
    let client = limiters.client_ip(&req);
    let session = match bearer(&req) {
        Some(token) => live_session(&state, token, read, &client).await,
        None => Bearer::Unknown,
    };
    let verdict = match session {
        Bearer::Live(s) => {
            let v = limiters.authenticated.check(format!("s:{}", s.id));
            req.extensions_mut().insert(ResolvedSession(s));
            v
        }
        Bearer::Dead(ended) => {
            req.extensions_mut().insert(DeadBearer(ended));
            limiters.anonymous.check(format!("ip:{client}"))
        }
        Bearer::Unknown => limiters.anonymous.check(format!("ip:{client}")),
        Bearer::Refused(retry_after) => Verdict::Limited {
            limit: limiters.anonymous.limit,
            retry_after,
        },
    };
    finish(&next, req, verdict).await
}

/// The admin listener's limiter: per role for valid tokens, else per client IP.
pub async fn admin<E: Endpoint>(next: E, req: Request) -> poem::Result<Response> {
    // Prometheus scrapes from one address every few seconds; the listener is private anyway.
    if req.uri().path() == "/metrics" {
        return next.call(req).await.map(IntoResponse::into_response);
    }
    let state = req
        .data::<AppState>()
        .cloned()
        .ok_or_else(|| ApiError::internal("application state missing"))?;
    let limiters = state.rate_limits.clone();
    let role = bearer(&req).and_then(|t| role_of(&state, t).map(|r| (r, t)));
    let verdict = match role {
        Some((_, token)) => {
            let key = sha256::Hash::hash(token.as_bytes()).to_string();
            limiters.admin.check(format!("t:{key}"))
        }
        None => limiters
            .anonymous
            .check(format!("ip:{}", limiters.client_ip(&req))),
    };
    finish(&next, req, verdict).await
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ip(s: &str) -> IpAddr {
        s.parse().expect("ip")
    }

    fn cidrs(list: &[&str]) -> Vec<Cidr> {
        list.iter().map(|c| c.parse().expect("cidr")).collect()
    }

    fn loopback() -> Vec<Cidr> {
        cidrs(&["127.0.0.0/8", "::1/128"])
    }

    #[test]
    fn spoofed_left_most_entries_are_ignored() {
        let peer = Some(ip("127.0.0.1"));
        // The client wrote the first two; our proxy appended the address it saw.
        let got = client_ip(peer, &["1.2.3.4, 5.6.7.8, 203.0.113.7"], &loopback());
        assert_eq!(got, Some(ip("203.0.113.7")));
        // A fresh made-up left part changes nothing.
        let again = client_ip(peer, &["9.9.9.9, 203.0.113.7"], &loopback());
        assert_eq!(again, got);
    }

    #[test]
    fn a_chain_of_trusted_proxies_is_walked_through() {
        let trusted = cidrs(&["127.0.0.0/8", "10.0.0.0/8"]);
        let got = client_ip(
            Some(ip("127.0.0.1")),
            &["6.6.6.6, 198.51.100.20", "10.1.2.3"],
            &trusted,
        );
        assert_eq!(got, Some(ip("198.51.100.20")), "several headers, in order");
    }

    #[test]
    fn ipv6_clients_and_proxies() {
        let trusted = cidrs(&["::1/128", "fd00::/8"]);
        let got = client_ip(
            Some(ip("::1")),
            &["2001:db8::bad, [2001:db8::1], fd12::7"],
            &trusted,
        );
        assert_eq!(got, Some(ip("2001:db8::1")));
        // An IPv4 peer seen through a dual-stack socket is still a trusted loopback.
        let got = client_ip(Some(ip("::ffff:127.0.0.1")), &["192.0.2.5"], &loopback());
        assert_eq!(got, Some(ip("192.0.2.5")));
    }

    #[test]
    fn all_entries_trusted_or_unusable_fall_back_to_the_peer() {
        let peer = Some(ip("127.0.0.1"));
        assert_eq!(client_ip(peer, &["127.0.0.2, ::1"], &loopback()), peer);
        assert_eq!(client_ip(peer, &[], &loopback()), peer);
        assert_eq!(client_ip(peer, &[" , "], &loopback()), peer);
        assert_eq!(client_ip(peer, &["5.5.5.5, unknown"], &loopback()), peer);
        assert_eq!(client_ip(None, &["5.5.5.5"], &loopback()), None);
    }

    #[test]
    fn ipv6_clients_are_keyed_by_network() {
        let key = |s: &str, bits| bucket_key(ip(s), bits);
        assert_eq!(key("2001:db8:1:2::1", 64), "2001:db8:1:2::/64");
        assert_eq!(
            key("2001:db8:1:2:ffff:ffff:ffff:ffff", 64),
            "2001:db8:1:2::/64"
        );
        assert_eq!(key("2001:db8:1:3::1", 64), "2001:db8:1:3::/64");
        assert_eq!(key("2001:db8:1:2ff::1", 56), "2001:db8:1:200::/56");
        assert_eq!(key("2001:db8::1", 128), "2001:db8::1/128");
        assert_eq!(key("2001:db8::1", 1), "::/1");
        assert_eq!(key("192.0.2.7", 64), "192.0.2.7", "IPv4: the address");
    }

    #[test]
    fn failed_lookups_allow_the_budget_then_wait() {
        let failed = FailedLookups::new(3, Duration::from_secs(300));
        for _ in 0..3 {
            assert_eq!(failed.wait("a"), None);
            failed.charge("a");
        }
        let wait = failed.wait("a").expect("budget spent");
        assert!(
            wait <= Duration::from_secs(100),
            "one drains in 100 s: {wait:?}"
        );
        assert_eq!(failed.wait("b"), None, "another address");
        failed.forget_idle();
        assert!(failed.wait("a").is_some(), "still draining");
    }

    #[test]
    fn an_untrusted_peer_cannot_speak_for_anyone() {
        let peer = Some(ip("198.51.100.1"));
        assert_eq!(client_ip(peer, &["203.0.113.7"], &loopback()), peer);
    }
}
