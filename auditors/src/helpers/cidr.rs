//! CIDR questions rules ask (internet-wide? public? inside the internal ranges?), for
//! IPv4 and IPv6. The address maths is ipnet's; this adds what AWS configurations need:
//! bare addresses read as single hosts, host bits ignored, families never mixed.

use std::net::IpAddr;

use ipnet::IpNet;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Cidr(IpNet);

impl Cidr {
    /// `10.1.2.3/8` (host bits dropped: `10.0.0.0/8`), `2001:db8::/32`, or a bare
    /// address (a single host). `None` for anything else.
    pub fn parse(text: &str) -> Option<Cidr> {
        let text = text.trim();
        let net = match text.parse::<IpNet>() {
            Ok(n) => n,
            Err(_) if !text.contains('/') => IpNet::from(text.parse::<IpAddr>().ok()?),
            Err(_) => return None,
        };
        Some(Cidr(net.trunc()))
    }

    pub fn prefix(&self) -> u8 {
        self.0.prefix_len()
    }

    pub fn is_v6(&self) -> bool {
        matches!(self.0, IpNet::V6(_))
    }

    /// Whether every address of `other` is inside `self` (never across families).
    pub fn contains(&self, other: &Cidr) -> bool {
        self.0.contains(&other.0)
    }

    /// `0.0.0.0/0` or `::/0`: every address there is.
    pub fn is_internet(&self) -> bool {
        self.prefix() == 0
    }

    /// Whether any address in the range is publicly routable, i.e. the range is not
    /// wholly inside private, loopback, link-local, shared (CGNAT) or unique-local space.
    pub fn is_public(&self) -> bool {
        let private: &[&str] = if self.is_v6() {
            &["fc00::/7", "fe80::/10", "::1/128", "::/128"]
        } else {
            &[
                "10.0.0.0/8",
                "172.16.0.0/12",
                "192.168.0.0/16",
                "100.64.0.0/10",
                "127.0.0.0/8",
                "169.254.0.0/16",
            ]
        };
        !private
            .iter()
            .filter_map(|p| Cidr::parse(p))
            .any(|p| p.contains(self))
    }

    /// Number of addresses, saturating at u128::MAX.
    pub fn size(&self) -> u128 {
        let host_bits = u32::from(self.0.max_prefix_len() - self.prefix());
        1u128.checked_shl(host_bits).unwrap_or(u128::MAX)
    }
}

/// Whether `cidr` lies inside any of `ranges` (e.g. the configured internal CIDRs).
pub fn within_any(cidr: &str, ranges: &[String]) -> bool {
    let Some(c) = Cidr::parse(cidr) else {
        return false;
    };
    ranges
        .iter()
        .filter_map(|r| Cidr::parse(r))
        .any(|r| r.contains(&c))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn c(s: &str) -> Cidr {
        Cidr::parse(s).unwrap()
    }

    #[test]
    fn parse_normalises_host_bits() {
        assert_eq!(c("10.1.2.3/8"), c("10.0.0.0/8"));
        assert_eq!(c("10.1.2.3").prefix(), 32);
        assert_eq!(c("2001:db8::1/32"), c("2001:db8::/32"));
        assert!(Cidr::parse("10.0.0.0/33").is_none());
        assert!(Cidr::parse("::/129").is_none());
        assert!(Cidr::parse("nonsense").is_none());
        assert!(Cidr::parse("").is_none());
    }

    #[test]
    fn internet_wide_ranges() {
        assert!(c("0.0.0.0/0").is_internet());
        assert!(c("::/0").is_internet());
        assert!(!c("0.0.0.0/1").is_internet());
        assert!(c("0.0.0.0/1").is_public());
    }

    #[test]
    fn containment() {
        assert!(c("10.0.0.0/8").contains(&c("10.2.0.0/16")));
        assert!(!c("10.2.0.0/16").contains(&c("10.0.0.0/8")));
        assert!(c("0.0.0.0/0").contains(&c("203.0.113.7/32")));
        assert!(
            !c("0.0.0.0/0").contains(&c("::/0")),
            "families never contain each other"
        );
        assert!(c("::/0").contains(&c("2001:db8::/32")));
        assert!(within_any(
            "10.2.3.0/24",
            &["192.168.0.0/16".into(), "10.0.0.0/8".into()]
        ));
        assert!(!within_any("11.0.0.0/8", &["10.0.0.0/8".into()]));
        assert!(!within_any("garbage", &["0.0.0.0/0".into()]));
    }

    #[test]
    fn public_and_private() {
        for private in [
            "10.0.0.0/8",
            "172.16.5.0/24",
            "192.168.1.1/32",
            "100.64.0.0/16",
            "127.0.0.1/32",
            "fd00::/8",
            "fe80::1/128",
        ] {
            assert!(!c(private).is_public(), "{private}");
        }
        for public in [
            "203.0.113.0/24",
            "8.8.8.8/32",
            "172.32.0.0/16",
            "2001:db8::/32",
            "0.0.0.0/0",
            "10.0.0.0/7",
        ] {
            assert!(c(public).is_public(), "{public}");
        }
    }

    #[test]
    fn sizes() {
        assert_eq!(c("10.0.0.0/24").size(), 256);
        assert_eq!(c("0.0.0.0/0").size(), 1u128 << 32);
        assert_eq!(c("::/0").size(), u128::MAX);
    }
}
