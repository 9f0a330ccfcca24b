//! Port ranges of security group rules, as AWS writes them: `ipProtocol` "-1" (or
//! "all") means every protocol and port; tcp/udp carry `fromPort`/`toPort` (absent,
//! null or -1 meaning all); icmp's "ports" are types and codes, never TCP/UDP ports.

/// Whether a rule with this protocol and range admits `port` over TCP or UDP.
pub fn rule_includes_port(protocol: &str, from: Option<i64>, to: Option<i64>, port: i64) -> bool {
    match normalise_protocol(protocol) {
        Protocol::All => true,
        Protocol::TcpUdp => {
            let (from, to) = range(from, to);
            from <= port && port <= to
        }
        Protocol::Other => false,
    }
}

/// How many TCP/UDP ports a rule opens (65536 for all traffic).
pub fn rule_port_count(protocol: &str, from: Option<i64>, to: Option<i64>) -> i64 {
    match normalise_protocol(protocol) {
        Protocol::All => 65536,
        Protocol::TcpUdp => {
            let (from, to) = range(from, to);
            (to - from + 1).max(0)
        }
        Protocol::Other => 0,
    }
}

/// Whether the rule admits all traffic (every protocol, every port).
pub fn rule_is_all_traffic(protocol: &str) -> bool {
    matches!(normalise_protocol(protocol), Protocol::All)
}

enum Protocol {
    All,
    TcpUdp,
    Other,
}

fn normalise_protocol(p: &str) -> Protocol {
    match p.trim().to_ascii_lowercase().as_str() {
        "-1" | "all" | "" => Protocol::All,
        "tcp" | "udp" | "6" | "17" => Protocol::TcpUdp,
        _ => Protocol::Other,
    }
}

fn range(from: Option<i64>, to: Option<i64>) -> (i64, i64) {
    let from = match from {
        Some(f) if f >= 0 => f,
        _ => 0,
    };
    let to = match to {
        Some(t) if t >= 0 => t,
        _ => 65535,
    };
    (from, to)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn all_traffic_includes_every_port() {
        assert!(rule_includes_port("-1", None, None, 22));
        assert!(rule_includes_port("all", Some(-1), Some(-1), 3389));
        assert!(rule_is_all_traffic("-1"));
        assert_eq!(rule_port_count("-1", None, None), 65536);
    }

    #[test]
    fn ranges_and_protocols() {
        assert!(rule_includes_port("tcp", Some(22), Some(22), 22));
        assert!(!rule_includes_port("tcp", Some(23), Some(25), 22));
        assert!(rule_includes_port("tcp", Some(0), Some(65535), 3389));
        assert!(
            rule_includes_port("udp", Some(-1), Some(-1), 53),
            "-1 on tcp/udp means every port"
        );
        assert!(rule_includes_port("6", Some(20), Some(30), 22));
        assert!(!rule_includes_port("icmp", Some(-1), Some(-1), 22));
        assert!(!rule_includes_port("icmpv6", None, None, 22));
        assert_eq!(rule_port_count("tcp", Some(1000), Some(1999)), 1000);
        assert_eq!(rule_port_count("icmp", Some(8), Some(0)), 0);
    }
}
