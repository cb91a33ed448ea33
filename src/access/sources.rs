//! The allow-list of hosts a sync may connect to, and the addresses no sync may reach.

use std::net::{IpAddr, Ipv4Addr};

use ipnet::IpNet;

/// Which source hosts a sync may connect to (`SOURCE_ALLOWLIST`).
///
/// With a list, a host is allowed when it is listed by name, or when every address it resolves
/// to lies in a listed network. Without one, every host is allowed except the addresses of this
/// machine and of its cloud's metadata services ([`is_internal`]): a service that connects
/// where a client tells it must not be turned against its own machine.
///
/// Webhook targets pass the same checks ([`Subject::Webhook`], `WEBHOOK_ALLOWLIST`).
#[derive(Debug, Clone, Default)]
pub struct SourcePolicy {
    list: Option<(Vec<String>, Vec<IpNet>)>,
    subject: Subject,
}

/// What a policy guards, as its refusals name it.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum Subject {
    /// Source databases and metadata services (`SOURCE_ALLOWLIST`).
    #[default]
    Source,
    /// Webhook receivers (`WEBHOOK_ALLOWLIST`, else `SOURCE_ALLOWLIST`).
    Webhook,
}

impl Subject {
    fn host(self) -> &'static str {
        match self {
            Self::Source => "source host",
            Self::Webhook => "webhook host",
        }
    }

    fn setting(self) -> &'static str {
        match self {
            Self::Source => "SOURCE_ALLOWLIST",
            Self::Webhook => "WEBHOOK_ALLOWLIST",
        }
    }
}

impl SourcePolicy {
    /// Parses `127.0.0.0/8,localhost,::1,db.internal`; a bare address is a one-address network.
    pub fn parse(list: &str) -> Result<Self, String> {
        let (mut hosts, mut nets) = (Vec::new(), Vec::new());
        for entry in list.split(',').map(str::trim).filter(|e| !e.is_empty()) {
            if let Ok(net) = entry.parse::<IpNet>() {
                nets.push(net);
            } else if let Ok(ip) = entry.parse::<IpAddr>() {
                nets.push(IpNet::from(ip));
            } else if entry.contains('/') {
                return Err(format!(
                    "SOURCE_ALLOWLIST: {entry:?} is not a valid network"
                ));
            } else {
                hosts.push(entry.to_ascii_lowercase());
            }
        }
        Ok(Self {
            list: Some((hosts, nets)),
            subject: Subject::Source,
        })
    }

    /// The policy of an optional `SOURCE_ALLOWLIST` value.
    pub fn from_setting(setting: Option<&str>) -> Result<Self, String> {
        match setting {
            Some(list) if !list.trim().is_empty() => Self::parse(list),
            _ => Ok(Self::default()),
        }
    }

    /// The same policy, naming `subject` in its refusals.
    pub fn guarding(mut self, subject: Subject) -> Self {
        self.subject = subject;
        self
    }

    fn refusal(&self, host: &str, ip: Option<IpAddr>) -> String {
        refusal(self.subject, host, ip)
    }

    fn listed_host(&self, host: &str) -> bool {
        self.list
            .as_ref()
            .is_some_and(|(hosts, _)| hosts.iter().any(|h| h.eq_ignore_ascii_case(host)))
    }

    /// Whether a connection to `ip` is allowed (for a host not listed by name).
    pub fn allows_ip(&self, ip: IpAddr) -> bool {
        let ip = ip.to_canonical();
        match &self.list {
            Some((_, nets)) => nets.iter().any(|n| n.contains(&ip)),
            None => !is_internal(ip),
        }
    }

    /// The check at enqueue, before any DNS look-up: refuses what is refused whatever the host
    /// resolves to. Hostnames that only resolution can judge are left to the worker.
    pub fn check_host(&self, host: &str) -> Result<(), String> {
        if self.listed_host(host) {
            return Ok(());
        }
        if let Some(ip) = address_literal(host) {
            return if self.allows_ip(ip) {
                Ok(())
            } else {
                Err(self.refusal(host, None))
            };
        }
        match &self.list {
            // A list of names only: an unlisted name cannot be allowed.
            Some((_, nets)) if nets.is_empty() => Err(self.refusal(host, None)),
            None if host.eq_ignore_ascii_case("localhost")
                || host.to_ascii_lowercase().ends_with(".localhost") =>
            {
                Err(self.refusal(host, None))
            }
            _ => Ok(()),
        }
    }

    /// The check before connecting: resolves `host` and returns the addresses to connect to,
    /// every one of them allowed (connecting to these, not re-resolving, closes the window in
    /// which DNS could answer differently).
    pub async fn resolve(&self, host: &str, port: u16) -> Result<Vec<IpAddr>, String> {
        let literal = host.trim_start_matches('[').trim_end_matches(']');
        let addresses: Vec<IpAddr> = match address_literal(host) {
            Some(ip) => vec![ip],
            None => tokio::net::lookup_host((literal, port))
                .await
                .map_err(|e| format!("resolving {} {host:?} failed: {e}", self.subject.host()))?
                .map(|a| a.ip())
                .collect(),
        };
        if addresses.is_empty() {
            return Err(format!(
                "{} {host:?} resolved to no address",
                self.subject.host()
            ));
        }
        if self.listed_host(host) {
            return Ok(addresses);
        }
        match addresses.iter().find(|ip| !self.allows_ip(**ip)) {
            Some(ip) => Err(self.refusal(host, Some(*ip))),
            None => Ok(addresses),
        }
    }
}

fn refusal(subject: Subject, host: &str, ip: Option<IpAddr>) -> String {
    let resolved = ip
        .map(|ip| format!(" (resolved to {ip})"))
        .unwrap_or_default();
    format!(
        "{what} {host:?}{resolved} is not allowed: loopback, link-local, unspecified and \
         IPv6 unique-local addresses need {setting}, and with a list only listed hosts \
         and networks are allowed",
        what = subject.host(),
        setting = subject.setting(),
    )
}

/// The address a host names by itself: an IP literal (IPv6 in brackets or not), or an IPv4
/// address in any of the forms the C resolver accepts (`2130706433`, `0x7f.1`,
/// `017700000001`), which a connection would reach without DNS.
pub fn address_literal(host: &str) -> Option<IpAddr> {
    let literal = host.trim_start_matches('[').trim_end_matches(']');
    literal
        .parse::<IpAddr>()
        .ok()
        .or_else(|| numeric_ipv4(literal).map(IpAddr::V4))
}

/// `inet_aton`'s IPv4 forms: one to four numbers separated by dots, each decimal, octal (a
/// leading 0) or hexadecimal (`0x`), the last filling the bytes the others leave.
fn numeric_ipv4(text: &str) -> Option<Ipv4Addr> {
    let parts: Vec<&str> = text.split('.').collect();
    if parts.len() > 4 {
        return None;
    }
    let mut numbers = Vec::with_capacity(parts.len());
    for part in &parts {
        let number = if let Some(hex) = part.strip_prefix("0x").or(part.strip_prefix("0X")) {
            u32::from_str_radix(hex, 16).ok()?
        } else if part.len() > 1 && part.starts_with('0') {
            u32::from_str_radix(&part[1..], 8).ok()?
        } else if !part.is_empty() && part.bytes().all(|b| b.is_ascii_digit()) {
            part.parse().ok()?
        } else {
            return None;
        };
        numbers.push(number);
    }
    let (last, leading) = numbers.split_last()?;
    if leading.iter().any(|&n| n > 255) {
        return None;
    }
    let last_bytes = 4 - leading.len();
    if last_bytes < 4 && u64::from(*last) >= 1u64 << (8 * last_bytes) {
        return None;
    }
    let value = leading
        .iter()
        .enumerate()
        .fold(*last, |acc, (i, &n)| acc | (n << (24 - 8 * i)));
    Some(Ipv4Addr::from(value))
}

/// Addresses a default policy refuses: this machine (loopback, unspecified, IPv4's "this
/// network" 0.0.0.0/8), link-local ones (cloud metadata at 169.254.169.254), IPv6 unique-local
/// ones (fc00::/7, where a cloud's IPv6 metadata service lives), and IPv4 addresses reached
/// through IPv6: mapped ones (canonicalised before this), NAT64 (64:ff9b::/96) and 6to4
/// (2002::/16) carry an IPv4 address that is judged in turn.
fn is_internal(ip: IpAddr) -> bool {
    match ip {
        IpAddr::V4(v4) => {
            v4.is_loopback() || v4.is_link_local() || v4.is_unspecified() || v4.octets()[0] == 0
        }
        IpAddr::V6(v6) => {
            let s = v6.segments();
            let octets = v6.octets();
            let nat64 = s[..6] == [0x64, 0xff9b, 0, 0, 0, 0];
            let six_to_four = s[0] == 0x2002;
            v6.is_loopback()
                || v6.is_unspecified()
                || (s[0] & 0xffc0) == 0xfe80
                || (s[0] & 0xfe00) == 0xfc00
                || (nat64
                    && is_internal(IpAddr::V4(Ipv4Addr::new(
                        octets[12], octets[13], octets[14], octets[15],
                    ))))
                || (six_to_four
                    && is_internal(IpAddr::V4(Ipv4Addr::new(
                        octets[2], octets[3], octets[4], octets[5],
                    ))))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn without_a_list_internal_addresses_are_refused() {
        let policy = SourcePolicy::default();
        for host in [
            "127.0.0.1",
            "::1",
            "[::1]",
            "169.254.169.254",
            "0.0.0.0",
            "localhost",
            "fe80::1",
            "::ffff:127.0.0.1",
            "fd00:ec2::254",
            "[fc00::1]",
            "64:ff9b::a9fe:a9fe",
            "2002:7f00:1::1",
            "0.1.2.3",
            "2130706433",
            "0x7f.1",
            "017700000001",
            "0177.0.0.1",
            "169.16689662",
        ] {
            assert!(policy.check_host(host).is_err(), "{host}");
        }
        for host in [
            "10.1.2.3",
            "db.example.com",
            "2001:db8::1",
            "64:ff9b::808:808",
            "167772161",
            "1.2.3.4.example",
        ] {
            assert!(policy.check_host(host).is_ok(), "{host}");
        }
    }

    #[test]
    fn numeric_ipv4_forms_read_as_the_c_resolver_reads_them() {
        for (text, ip) in [
            ("2130706433", "127.0.0.1"),
            ("0x7f.1", "127.0.0.1"),
            ("017700000001", "127.0.0.1"),
            ("10.1", "10.0.0.1"),
            ("192.168.257", "192.168.1.1"),
            ("0X0A.0.0.010", "10.0.0.8"),
        ] {
            assert_eq!(numeric_ipv4(text), Some(ip.parse().unwrap()), "{text}");
        }
        for text in [
            "",
            "1.2.3.4.5",
            "256.1.1.1",
            "1.2.65536",
            "08",
            "0xg",
            "db",
            "1..2",
        ] {
            assert_eq!(numeric_ipv4(text), None, "{text}");
        }
    }

    #[test]
    fn a_list_allows_its_hosts_and_networks_only() {
        let policy = SourcePolicy::parse("10.0.0.0/8, db.internal, ::1").unwrap();
        assert!(policy.check_host("10.9.9.9").is_ok());
        assert!(policy.check_host("DB.internal").is_ok());
        assert!(policy.check_host("::1").is_ok());
        assert!(policy.check_host("192.168.1.1").is_err());
        assert!(policy.check_host("127.0.0.1").is_err());
        assert!(
            policy.check_host("other.example").is_ok(),
            "left to resolution"
        );
        let names_only = SourcePolicy::parse("db.internal").unwrap();
        assert!(names_only.check_host("other.example").is_err());
        assert!(SourcePolicy::parse("10.0.0.0/99").is_err());
    }

    #[tokio::test]
    async fn resolution_checks_every_address() {
        let policy = SourcePolicy::default();
        assert!(
            policy
                .resolve("localhost", 5432)
                .await
                .unwrap_err()
                .contains("not allowed")
        );
        let allowed = SourcePolicy::parse("127.0.0.0/8,::1").unwrap();
        assert!(!allowed.resolve("localhost", 5432).await.unwrap().is_empty());
    }
}
