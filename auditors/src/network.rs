//! Reachability from the internet, computed once in Rust from the stored items of one
//! account and region: for an instance (each of its network interfaces), a standalone
//! network interface, an RDS instance or a load balancer, the path from anywhere on
//! the internet to it, and the ports that survive every hop:
//!
//! 1. a public address (public IPv4 or Elastic IP on the interface, an IPv6 address,
//!    `publiclyAccessible` for RDS, scheme `internet-facing` for load balancers);
//! 2. the subnet's route table (its explicit association, else the VPC's main table)
//!    sending `0.0.0.0/0` (or `::/0`) to an internet gateway attached to the VPC;
//! 3. the subnet's network ACL letting the port in from anywhere and, being
//!    stateless, letting the replies out to ephemeral ports (1024-65535);
//! 4. a security group on the interface opening the port to `0.0.0.0/0` (or `::/0`).
//!
//! "From the internet" means from any address: only rules whose source or destination
//! is the whole address space count (a narrower allow admits part of the internet and
//! is its own finding, `ec2/sg_wide_source_range`). An item on the path that is not in
//! the inventory is said in the path; a missing network ACL is assumed to be the
//! default one (it allows all traffic), so an incomplete inventory errs towards
//! "reachable", never towards silence. A missing route table or subnet stops the path,
//! and the fact says so (`blocked`).
//!
//! A security group's fact is about the interfaces that use it: reachable when one of
//! them is reachable on a port the group itself opens; unused when none does.

use std::collections::{BTreeMap, HashMap, HashSet};

use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::shapes::sg_permissions;

/// The types whose items make up paths: a change to one re-judges its neighbours.
pub const PATH_TYPES: &[&str] = &[
    "AWS::EC2::Instance",
    "AWS::EC2::NetworkInterface",
    "AWS::EC2::Subnet",
    "AWS::EC2::RouteTable",
    "AWS::EC2::InternetGateway",
    "AWS::EC2::NetworkAcl",
    "AWS::EC2::SecurityGroup",
    "AWS::RDS::DBInstance",
    "AWS::ElasticLoadBalancing::LoadBalancer",
    "AWS::ElasticLoadBalancingV2::LoadBalancer",
    "AWS::ElasticLoadBalancingV2::Listener",
];

/// The types that carry a `reachable_from_internet` fact.
pub const EXPOSED_TYPES: &[&str] = &[
    "AWS::EC2::Instance",
    "AWS::EC2::NetworkInterface",
    "AWS::EC2::SecurityGroup",
    "AWS::RDS::DBInstance",
    "AWS::ElasticLoadBalancing::LoadBalancer",
    "AWS::ElasticLoadBalancingV2::LoadBalancer",
];

/// Whether items of this type carry the fact.
pub fn is_exposed_type(resource_type: &str) -> bool {
    EXPOSED_TYPES.contains(&resource_type)
}

/// A port range of one protocol (`tcp` or `udp`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PortRange {
    pub protocol: String,
    pub from: u32,
    pub to: u32,
}

/// The `reachable_from_internet` fact.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct Exposure {
    /// Reachable from anywhere on the internet on at least one port.
    pub reachable: bool,
    /// The ports that survive every hop.
    pub ports: Vec<PortRange>,
    /// The hops, in words, from the internet to the resource.
    pub path: Vec<String>,
    /// Why it is not reachable: the first hop that stops it.
    pub blocked: Option<String>,
    /// Whether anything uses it: a running instance, an interface in use, a security
    /// group attached to some interface.
    pub in_use: bool,
    /// What uses it, in words ("attached to i-1 (eni-1), eni-2"), for security groups.
    pub used_by: Vec<String>,
    /// The internet gateway on the path shown, when reachable.
    pub gateway: Option<String>,
}

impl Exposure {
    /// `tcp 22, tcp 80-443, udp 53`.
    pub fn ports_text(&self) -> String {
        self.ports
            .iter()
            .map(|p| {
                if p.from == p.to {
                    format!("{} {}", p.protocol, p.from)
                } else if p.from == 0 && p.to == 65535 {
                    format!("{} (every port)", p.protocol)
                } else {
                    format!("{} {}-{}", p.protocol, p.from, p.to)
                }
            })
            .collect::<Vec<_>>()
            .join(", ")
    }

    /// The internet gateway on the path, if there is one.
    pub fn gateway(&self) -> Option<&str> {
        self.gateway.as_deref()
    }
}

/// Ports per protocol, as sorted, disjoint, inclusive ranges.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Ports(BTreeMap<&'static str, Vec<(u32, u32)>>);

const PROTOCOLS: [&str; 2] = ["tcp", "udp"];
const EPHEMERAL: (u32, u32) = (1024, 65535);

/// `tcp`/`6`, `udp`/`17`, `-1`/`all` (both); anything else (ICMP) carries no port.
fn protocols_of(p: &str) -> &'static [&'static str] {
    match p.trim().to_ascii_lowercase().as_str() {
        "-1" | "all" => &PROTOCOLS,
        "tcp" | "6" => &PROTOCOLS[..1],
        "udp" | "17" => &PROTOCOLS[1..],
        _ => &[],
    }
}

fn normalise(mut r: Vec<(u32, u32)>) -> Vec<(u32, u32)> {
    r.sort();
    let mut out: Vec<(u32, u32)> = Vec::new();
    for (a, b) in r {
        match out.last_mut() {
            Some(last) if a <= last.1.saturating_add(1) => last.1 = last.1.max(b),
            _ => out.push((a, b)),
        }
    }
    out
}

fn intersect(a: &[(u32, u32)], b: &[(u32, u32)]) -> Vec<(u32, u32)> {
    let mut out = Vec::new();
    for &(x1, x2) in a {
        for &(y1, y2) in b {
            let (lo, hi) = (x1.max(y1), x2.min(y2));
            if lo <= hi {
                out.push((lo, hi));
            }
        }
    }
    normalise(out)
}

fn subtract(a: &[(u32, u32)], b: &[(u32, u32)]) -> Vec<(u32, u32)> {
    let mut out = a.to_vec();
    for &(y1, y2) in b {
        out = out
            .into_iter()
            .flat_map(|(x1, x2)| {
                let mut parts = Vec::new();
                if y2 < x1 || y1 > x2 {
                    parts.push((x1, x2));
                } else {
                    if x1 < y1 {
                        parts.push((x1, y1 - 1));
                    }
                    if y2 < x2 {
                        parts.push((y2 + 1, x2));
                    }
                }
                parts
            })
            .collect();
    }
    normalise(out)
}

impl Ports {
    fn add(&mut self, protocol: &'static str, from: u32, to: u32) {
        let v = self.0.entry(protocol).or_default();
        v.push((from.min(to), from.max(to)));
        *v = normalise(std::mem::take(v));
    }

    fn all() -> Ports {
        let mut p = Ports::default();
        for proto in PROTOCOLS {
            p.add(proto, 0, 65535);
        }
        p
    }

    fn intersect(&self, other: &Ports) -> Ports {
        let mut out = Ports::default();
        for (proto, a) in &self.0 {
            if let Some(b) = other.0.get(proto) {
                let r = intersect(a, b);
                if !r.is_empty() {
                    out.0.insert(proto, r);
                }
            }
        }
        out
    }

    fn union(&mut self, other: &Ports) {
        for (proto, r) in &other.0 {
            for &(a, b) in r {
                self.add(proto, a, b);
            }
        }
    }

    fn is_empty(&self) -> bool {
        self.0.values().all(Vec::is_empty)
    }

    fn ranges(&self) -> Vec<PortRange> {
        self.0
            .iter()
            .flat_map(|(proto, r)| {
                r.iter().map(|&(from, to)| PortRange {
                    protocol: (*proto).to_owned(),
                    from,
                    to,
                })
            })
            .collect()
    }
}

fn text(v: &Value, key: &str) -> Option<String> {
    v.get(key).and_then(Value::as_str).map(str::to_owned)
}

fn list<'a>(v: &'a Value, key: &str) -> impl Iterator<Item = &'a Value> {
    v.get(key).and_then(Value::as_array).into_iter().flatten()
}

fn port_of(v: Option<&Value>) -> Option<u32> {
    match v? {
        Value::Number(n) => n.as_u64().and_then(|p| u32::try_from(p).ok()),
        Value::String(s) => s.trim().parse().ok(),
        _ => None,
    }
}

/// An address family: which "anywhere" and which default route.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Family {
    V4,
    V6,
}

impl Family {
    fn index(self) -> usize {
        match self {
            Family::V4 => 0,
            Family::V6 => 1,
        }
    }

    fn anywhere(self) -> &'static str {
        match self {
            Family::V4 => "0.0.0.0/0",
            Family::V6 => "::/0",
        }
    }
}

/// Something with an address in subnets behind security groups: a network interface,
/// or what AWS Config describes without one (RDS, load balancers).
#[derive(Debug, Clone, Default)]
pub struct Attachment {
    /// The resource it belongs to (`i-1`, a DB identifier, a load balancer name).
    owner: String,
    /// The interface (`eni-1`), when there is one.
    interface: Option<String>,
    vpc: Option<String>,
    subnets: Vec<String>,
    groups: Vec<String>,
    /// The public IPv4 address, or a word for it ("publicly accessible").
    public_v4: Option<String>,
    v6: Option<String>,
    /// Running, attached, available: whether anything answers on it.
    in_use: bool,
    stopped_reason: Option<String>,
    /// Ports the resource itself listens on (a database port, listener ports); `None`
    /// when only the security groups say.
    listens: Option<Ports>,
}

/// The stored network of one account and region, as rules' facts need it.
#[derive(Debug, Default)]
pub struct Network {
    subnets: HashMap<String, Value>,
    route_tables: Vec<(String, Value)>,
    gateways: HashMap<String, Value>,
    acls: Vec<(String, Value)>,
    /// What each security group opens to anywhere, per family (IPv4, IPv6): computed
    /// once when the network is built, so a network of tens of thousands of groups
    /// holds port ranges rather than their whole configurations.
    groups: HashMap<String, [Ports; 2]>,
    /// Every interface-like attachment, by the resource type and id that owns it.
    attachments: Vec<(String, String, Attachment)>,
    /// Listener ports by load balancer ARN (ELBv2 listeners are items of their own).
    listeners: HashMap<String, Ports>,
    /// The attachments (indexes into `attachments`, in order) using each group.
    group_users: HashMap<String, Vec<usize>>,
}

/// One stored item as the network needs it: type, id and its live config (the
/// document's `config` with ephemeral facts such as instance state put back).
#[derive(Debug, Clone)]
pub struct NetworkItem {
    pub resource_type: String,
    pub resource_id: String,
    pub config: Value,
}

/// What one item contributes to its scope's network: computed from the item alone, so
/// items can be turned into pieces on several threads ([`Network::from_pieces`] then
/// assembles them in order). A piece keeps only what reachability needs, never the
/// item's whole configuration (but for the few route-deciding types).
#[derive(Debug)]
pub enum Piece {
    Subnet(String, Value),
    RouteTable(String, Value),
    Gateway(String, Value),
    Acl(String, Value),
    Group(String, [Ports; 2]),
    /// An ELBv2 listener: its load balancer's ARN, protocol and port.
    Listener(String, &'static str, u32),
    /// A load balancer: attached once every listener has been seen.
    LoadBalancer(NetworkItem),
    Attachments(String, String, Vec<Attachment>),
}

impl Piece {
    pub fn of(item: NetworkItem) -> Option<Piece> {
        if item.resource_type == "AWS::ElasticLoadBalancingV2::LoadBalancer" {
            return Some(Piece::LoadBalancer(item));
        }
        let NetworkItem {
            resource_type,
            resource_id: id,
            mut config,
        } = item;
        let mut c = || {
            config
                .as_object_mut()
                .and_then(|m| m.remove("configuration"))
                .unwrap_or(Value::Null)
        };
        Some(match resource_type.as_str() {
            "AWS::EC2::Subnet" => Piece::Subnet(id, c()),
            "AWS::EC2::RouteTable" => Piece::RouteTable(id, c()),
            "AWS::EC2::InternetGateway" => Piece::Gateway(id, c()),
            "AWS::EC2::NetworkAcl" => Piece::Acl(id, c()),
            "AWS::EC2::SecurityGroup" => Piece::Group(id, group_opens(&config)),
            "AWS::ElasticLoadBalancingV2::Listener" => {
                let c = c();
                let (Some(lb), Some(port)) = (text(&c, "loadBalancerArn"), port_of(c.get("port")))
                else {
                    return None;
                };
                let protocol = match text(&c, "protocol").as_deref() {
                    Some("UDP") => "udp",
                    _ => "tcp",
                };
                Piece::Listener(lb, protocol, port)
            }
            t => {
                let attached = attachments_of(t, &config);
                Piece::Attachments(resource_type, id, attached)
            }
        })
    }
}

impl Network {
    pub fn new(items: impl IntoIterator<Item = NetworkItem>) -> Network {
        Network::from_pieces(items.into_iter().filter_map(Piece::of))
    }

    /// The network of the pieces of every item of a scope, in the items' order.
    pub fn from_pieces(pieces: impl IntoIterator<Item = Piece>) -> Network {
        let mut n = Network::default();
        let mut lbs = Vec::new();
        for piece in pieces {
            match piece {
                Piece::Subnet(id, c) => {
                    n.subnets.insert(id, c);
                }
                Piece::RouteTable(id, c) => n.route_tables.push((id, c)),
                Piece::Gateway(id, c) => {
                    n.gateways.insert(id, c);
                }
                Piece::Acl(id, c) => n.acls.push((id, c)),
                Piece::Group(id, opens) => {
                    n.groups.insert(id, opens);
                }
                Piece::Listener(lb, protocol, port) => {
                    n.listeners.entry(lb).or_default().add(protocol, port, port);
                }
                Piece::LoadBalancer(item) => lbs.push(item),
                Piece::Attachments(t, id, attached) => {
                    for a in attached {
                        n.attachments.push((t.clone(), id.clone(), a));
                    }
                }
            }
        }
        // Load balancers last: their listeners may come after them.
        for item in lbs {
            for mut a in attachments_of(&item.resource_type, &item.config) {
                let arn = item
                    .config
                    .get("arn")
                    .and_then(Value::as_str)
                    .or_else(|| item.config["configuration"]["loadBalancerArn"].as_str());
                a.listens = arn.and_then(|arn| n.listeners.get(arn)).cloned();
                n.attachments
                    .push((item.resource_type.clone(), item.resource_id.clone(), a));
            }
        }
        // An interface attached to an instance in the inventory is the instance's.
        // Sets and indexes, not scans: a scope holds tens of thousands of interfaces and
        // groups, and a scan per item made building and judging it quadratic.
        let instances: HashSet<String> = n
            .attachments
            .iter()
            .filter(|(t, _, _)| t == "AWS::EC2::Instance")
            .map(|(_, id, _)| id.clone())
            .collect();
        n.attachments
            .retain(|(t, _, a)| t != "AWS::EC2::NetworkInterface" || !instances.contains(&a.owner));
        for (i, (_, _, a)) in n.attachments.iter().enumerate() {
            for g in &a.groups {
                let users = n.group_users.entry(g.clone()).or_default();
                // A group listed twice on one attachment is one use of it.
                if users.last() != Some(&i) {
                    users.push(i);
                }
            }
        }
        n
    }

    /// The fact for an item, computed from its own config (as being audited) and its
    /// neighbours; `None` for types without one.
    pub fn exposure(
        &self,
        resource_type: &str,
        resource_id: &str,
        config: &Value,
    ) -> Option<Exposure> {
        if !is_exposed_type(resource_type) {
            return None;
        }
        if resource_type == "AWS::EC2::SecurityGroup" {
            return Some(self.group_exposure(resource_id, config));
        }
        let mut atts = attachments_of(resource_type, config);
        if resource_type == "AWS::ElasticLoadBalancingV2::LoadBalancer" {
            let arn = config
                .get("arn")
                .and_then(Value::as_str)
                .or_else(|| config["configuration"]["loadBalancerArn"].as_str());
            for a in &mut atts {
                a.listens = arn.and_then(|arn| self.listeners.get(arn)).cloned();
            }
        }
        Some(self.union(atts.iter().map(|a| self.attachment_exposure(a, None))))
    }

    fn group_exposure(&self, group_id: &str, config: &Value) -> Exposure {
        let users: Vec<&Attachment> = self
            .group_users
            .get(group_id)
            .into_iter()
            .flatten()
            .filter_map(|&i| self.attachments.get(i).map(|(_, _, a)| a))
            .collect();
        let used_by: Vec<String> = users
            .iter()
            .map(|a| match &a.interface {
                Some(eni) if *eni != a.owner => format!("{} ({eni})", a.owner),
                _ => a.owner.clone(),
            })
            .collect();
        if users.is_empty() {
            return Exposure {
                blocked: Some(format!(
                    "{group_id} is attached to no network interface in the inventory"
                )),
                ..Exposure::default()
            };
        }
        let mut e = self.union(
            users
                .iter()
                .map(|a| self.attachment_exposure(a, Some((group_id, config)))),
        );
        e.in_use = users.iter().any(|a| a.in_use);
        e.used_by = used_by;
        e
    }

    /// The union of several attachments' exposures: reachable when one is; ports of
    /// all of them; the path of the first reachable one (or the first blocked one).
    fn union(&self, parts: impl Iterator<Item = Exposure>) -> Exposure {
        let parts: Vec<Exposure> = parts.collect();
        let mut ports = Ports::default();
        for p in &parts {
            for r in &p.ports {
                let proto = if r.protocol == "udp" { "udp" } else { "tcp" };
                ports.add(proto, r.from, r.to);
            }
        }
        let shown = parts
            .iter()
            .find(|p| p.reachable)
            .or_else(|| parts.first())
            .cloned()
            .unwrap_or_else(|| Exposure {
                blocked: Some("no network interface".into()),
                ..Exposure::default()
            });
        Exposure {
            reachable: parts.iter().any(|p| p.reachable),
            ports: ports.ranges(),
            path: shown.path,
            gateway: shown.gateway,
            blocked: if parts.iter().any(|p| p.reachable) {
                None
            } else {
                shown.blocked
            },
            in_use: parts.iter().any(|p| p.in_use),
            used_by: Vec::new(),
        }
    }

    /// One attachment's exposure. With `only_group`, only that security group's rules
    /// count as opening ports (the question "is this group's opening reachable?").
    fn attachment_exposure(&self, a: &Attachment, only_group: Option<(&str, &Value)>) -> Exposure {
        let mut e = Exposure {
            in_use: a.in_use,
            ..Exposure::default()
        };
        let target = match &a.interface {
            Some(eni) if *eni != a.owner => format!("{} ({eni})", a.owner),
            _ => a.owner.clone(),
        };
        if let Some(why) = &a.stopped_reason {
            e.blocked = Some(format!("{target} {why}"));
            return e;
        }
        let families: Vec<(Family, &String)> = [(Family::V4, &a.public_v4), (Family::V6, &a.v6)]
            .into_iter()
            .filter_map(|(f, addr)| addr.as_ref().map(|a| (f, a)))
            .collect();
        if families.is_empty() {
            e.blocked = Some(format!("{target} has no public IP address"));
            return e;
        }
        let mut first_block: Option<String> = None;
        let mut best: Option<(Ports, Vec<String>, String)> = None;
        for subnet in &a.subnets {
            for &(family, address) in &families {
                match self.path_through(a, subnet, family, only_group) {
                    Ok((ports, hops, igw)) => {
                        let mut path = vec![format!("{target} has public address {address}")];
                        path.extend(hops);
                        match &mut best {
                            Some((all, _, _)) => all.union(&ports),
                            None => best = Some((ports, path, igw)),
                        }
                    }
                    Err(why) => {
                        first_block.get_or_insert(why);
                    }
                }
            }
        }
        match best {
            Some((ports, path, igw)) => {
                e.reachable = true;
                e.ports = ports.ranges();
                e.path = path;
                e.gateway = Some(igw);
            }
            None => {
                e.blocked =
                    Some(first_block.unwrap_or_else(|| format!("{target} is in no subnet")));
            }
        }
        e
    }

    fn subnet_vpc(&self, a: &Attachment, subnet: &str) -> Option<String> {
        self.subnets
            .get(subnet)
            .and_then(|s| text(s, "vpcId"))
            .or_else(|| a.vpc.clone())
    }

    /// The ports that reach `a` through `subnet` for one family, with the hops in
    /// words; or the hop that stops it.
    fn path_through(
        &self,
        a: &Attachment,
        subnet: &str,
        family: Family,
        only_group: Option<(&str, &Value)>,
    ) -> Result<(Ports, Vec<String>, String), String> {
        let vpc = self.subnet_vpc(a, subnet);
        let mut hops = Vec::new();
        // Route table: the explicit association, else the VPC's main table.
        let explicit = self.route_tables.iter().find(|(_, rt)| {
            list(rt, "associations")
                .any(|x| x.get("subnetId").and_then(Value::as_str) == Some(subnet))
        });
        let (rt_id, rt, how) = match explicit {
            Some((id, rt)) => (id, rt, "associated with it"),
            None => match self.route_tables.iter().find(|(_, rt)| {
                text(rt, "vpcId") == vpc
                    && list(rt, "associations")
                        .any(|x| x.get("main").and_then(Value::as_bool) == Some(true))
            }) {
                Some((id, rt)) => (id, rt, "the main route table of its VPC"),
                None => {
                    return Err(format!(
                        "no route table of {subnet} (or of {}) is in the inventory",
                        vpc.as_deref().unwrap_or("its VPC")
                    ))
                }
            },
        };
        let anywhere = family.anywhere();
        let dest_key = match family {
            Family::V4 => "destinationCidrBlock",
            Family::V6 => "destinationIpv6CidrBlock",
        };
        let route = list(rt, "routes").find(|r| {
            r.get(dest_key).and_then(Value::as_str) == Some(anywhere)
                && r.get("gatewayId")
                    .and_then(Value::as_str)
                    .is_some_and(|g| g.starts_with("igw-"))
                && r.get("state").and_then(Value::as_str) != Some("blackhole")
        });
        let Some(igw) = route.and_then(|r| text(r, "gatewayId")) else {
            return Err(format!(
                "route table {rt_id} of {subnet} sends {anywhere} to no internet gateway"
            ));
        };
        let igw_note = match self.gateways.get(&igw) {
            Some(g) => {
                let attached = list(g, "attachments").any(|x| {
                    text(x, "vpcId") == vpc
                        && !matches!(
                            x.get("state").and_then(Value::as_str),
                            Some("detached" | "detaching")
                        )
                });
                if !attached {
                    return Err(format!(
                        "internet gateway {igw} is not attached to {}",
                        vpc.as_deref().unwrap_or("the subnet's VPC")
                    ));
                }
                String::new()
            }
            None => " (the gateway itself is not in the inventory)".into(),
        };
        hops.push(format!(
            "{subnet}: route table {rt_id} ({how}) sends {anywhere} to {igw}{igw_note}"
        ));
        // Network ACL: the subnet's, else the VPC's default.
        let acl = self
            .acls
            .iter()
            .find(|(_, acl)| {
                list(acl, "associations")
                    .any(|x| x.get("subnetId").and_then(Value::as_str) == Some(subnet))
            })
            .or_else(|| {
                self.acls.iter().find(|(_, acl)| {
                    text(acl, "vpcId") == vpc
                        && acl.get("isDefault").and_then(Value::as_bool) == Some(true)
                })
            });
        let (acl_in, acl_note) = match acl {
            Some((id, acl)) => {
                let inbound = acl_allowed(acl, false, family);
                let outbound = acl_allowed(acl, true, family);
                // Replies leave to the caller's ephemeral port: without them, no session.
                let mut ephemeral = Ports::default();
                for proto in PROTOCOLS {
                    ephemeral.add(proto, EPHEMERAL.0, EPHEMERAL.1);
                }
                let replies = outbound.intersect(&ephemeral);
                let mut inbound_ok = Ports::default();
                for (proto, r) in &inbound.0 {
                    if replies.0.get(proto).is_some_and(|x| !x.is_empty()) {
                        inbound_ok.0.insert(proto, r.clone());
                    }
                }
                if inbound_ok.is_empty() {
                    return Err(if inbound.is_empty() {
                        format!("network ACL {id} of {subnet} lets nothing in from {anywhere}")
                    } else {
                        format!("network ACL {id} of {subnet} lets no replies out to {anywhere} (ephemeral ports)")
                    });
                }
                (inbound_ok, format!("network ACL {id}"))
            }
            None => (
                Ports::all(),
                format!("the network ACL of {subnet} (not in the inventory: assumed to be the default, which allows all traffic)"),
            ),
        };
        // Security groups: union of what they open to anywhere.
        let mut opened = Ports::default();
        let mut opened_by = Vec::new();
        let mut unknown = Vec::new();
        if a.groups.is_empty() {
            // Network load balancers without groups: only the listeners filter.
            opened = Ports::all();
            opened_by.push("no security group (every listener port is open)".to_owned());
        }
        for g in &a.groups {
            if let Some((only, _)) = only_group {
                if g != only {
                    continue;
                }
            }
            let p = match only_group {
                Some((only, c)) if g == only => {
                    let [v4, v6] = group_opens(c);
                    match family.index() {
                        0 => v4,
                        _ => v6,
                    }
                }
                _ => match self.groups.get(g) {
                    Some(opens) => opens[family.index()].clone(),
                    None => {
                        unknown.push(g.clone());
                        continue;
                    }
                },
            };
            if !p.is_empty() {
                opened_by.push(g.clone());
                opened.union(&p);
            }
        }
        let mut ports = opened.intersect(&acl_in);
        if let Some(listens) = &a.listens {
            ports = ports.intersect(listens);
        }
        if ports.is_empty() {
            let mut why = if opened.is_empty() {
                format!(
                    "no security group of it opens a port to {anywhere}{}",
                    if unknown.is_empty() {
                        String::new()
                    } else {
                        format!(" ({} not in the inventory)", unknown.join(", "))
                    }
                )
            } else if a.listens.is_some() && !opened.intersect(&acl_in).is_empty() {
                format!("nothing listens on the ports its security groups open to {anywhere}")
            } else {
                format!("{acl_note} blocks every port its security groups open to {anywhere}")
            };
            if let Some(first) = hops.first() {
                why = format!("{why} (though {first})");
            }
            return Err(why);
        }
        hops.push(format!(
            "{acl_note} lets the ports in from {anywhere} and the replies out"
        ));
        hops.push(format!(
            "security group {} opens them to {anywhere}",
            opened_by.join(", ")
        ));
        Ok((ports, hops, igw))
    }
}

/// What a network ACL lets through in one direction for traffic from (or to) anywhere:
/// entries in rule-number order, the first that matches a port decides it.
fn acl_allowed(acl: &Value, egress: bool, family: Family) -> Ports {
    let key = match family {
        Family::V4 => "cidrBlock",
        Family::V6 => "ipv6CidrBlock",
    };
    let mut entries: Vec<&Value> = list(acl, "entries")
        .filter(|e| e.get("egress").and_then(Value::as_bool).unwrap_or(false) == egress)
        .filter(|e| e.get(key).and_then(Value::as_str) == Some(family.anywhere()))
        .collect();
    entries.sort_by_key(|e| {
        e.get("ruleNumber")
            .and_then(Value::as_i64)
            .unwrap_or(i64::MAX)
    });
    let mut allowed = Ports::default();
    let mut decided = Ports::default();
    for e in entries {
        let protocol = match e.get("protocol") {
            Some(Value::String(s)) => s.clone(),
            Some(Value::Number(n)) => n.to_string(),
            _ => continue,
        };
        let range = e.get("portRange");
        let (from, to) = match (
            port_of(range.and_then(|r| r.get("from"))),
            port_of(range.and_then(|r| r.get("to"))),
        ) {
            (Some(f), Some(t)) if protocol != "-1" => (f, t),
            _ => (0, 65535),
        };
        let allow = e
            .get("ruleAction")
            .and_then(Value::as_str)
            .is_some_and(|a| a.eq_ignore_ascii_case("allow"));
        for &proto in protocols_of(&protocol) {
            let undecided = subtract(
                &[(from.min(to), from.max(to))],
                decided.0.get(proto).map_or(&[][..], Vec::as_slice),
            );
            if allow {
                for &(a, b) in &undecided {
                    allowed.add(proto, a, b);
                }
            }
            decided.add(proto, from.min(to), from.max(to));
        }
    }
    allowed
}

/// The ports a security group opens to anywhere (`0.0.0.0/0` or `::/0`).
/// What a security group opens to anywhere, per family (IPv4, IPv6).
fn group_opens(config: &Value) -> [Ports; 2] {
    let mut opens = [Ports::default(), Ports::default()];
    for row in sg_permissions(config, "ingress") {
        for (slot, family, kind) in [(0, Family::V4, "ipv4"), (1, Family::V6, "ipv6")] {
            if row["kind"] != kind
                || row["source"].as_str().map(str::trim) != Some(family.anywhere())
            {
                continue;
            }
            let protocol = row["protocol"].as_str().unwrap_or("-1");
            let all = matches!(protocol, "-1" | "all");
            let from = if all {
                Some(0)
            } else {
                port_of(row.get("from"))
            };
            let to = if all {
                Some(65535)
            } else {
                port_of(row.get("to"))
            };
            let (from, to) = match (from, to) {
                (Some(f), Some(t)) => (f, t),
                _ => (0, 65535),
            };
            for &proto in protocols_of(protocol) {
                opens[slot].add(proto, from, to);
            }
        }
    }
    opens
}

fn ids_in(v: &Value, key: &str, id_key: &str) -> Vec<String> {
    list(v, key)
        .filter_map(|x| match x {
            Value::String(s) => Some(s.clone()),
            other => text(other, id_key),
        })
        .collect()
}

/// What of an item sits in subnets behind security groups, as attachments.
fn attachments_of(resource_type: &str, config: &Value) -> Vec<Attachment> {
    let c = config.get("configuration").unwrap_or(&Value::Null);
    match resource_type {
        "AWS::EC2::Instance" => {
            let owner = text(c, "instanceId").unwrap_or_default();
            let state = c["state"]["name"].as_str().unwrap_or("running").to_owned();
            let stopped_reason = (!matches!(state.as_str(), "running" | "pending"))
                .then(|| format!("is {state}, so nothing answers on it"));
            let in_use = stopped_reason.is_none();
            let vpc = text(c, "vpcId");
            let enis: Vec<Attachment> = list(c, "networkInterfaces")
                .map(|n| Attachment {
                    owner: owner.clone(),
                    interface: text(n, "networkInterfaceId"),
                    vpc: text(n, "vpcId").or_else(|| vpc.clone()),
                    subnets: text(n, "subnetId").into_iter().collect(),
                    groups: ids_in(n, "groups", "groupId"),
                    public_v4: n["association"]["publicIp"].as_str().map(str::to_owned),
                    v6: list(n, "ipv6Addresses")
                        .filter_map(|x| {
                            text(x, "ipv6Address").or_else(|| x.as_str().map(str::to_owned))
                        })
                        .next(),
                    in_use,
                    stopped_reason: stopped_reason.clone(),
                    listens: None,
                })
                .collect();
            if !enis.is_empty() {
                return enis;
            }
            vec![Attachment {
                owner: owner.clone(),
                interface: None,
                vpc,
                subnets: text(c, "subnetId").into_iter().collect(),
                groups: ids_in(c, "securityGroups", "groupId"),
                public_v4: text(c, "publicIpAddress"),
                v6: text(c, "ipv6Address"),
                in_use,
                stopped_reason,
                listens: None,
            }]
        }
        "AWS::EC2::NetworkInterface" => {
            let id = text(c, "networkInterfaceId").unwrap_or_default();
            let owner = c["attachment"]["instanceId"]
                .as_str()
                .map_or_else(|| id.clone(), str::to_owned);
            let in_use = text(c, "status").as_deref() != Some("available");
            vec![Attachment {
                owner,
                interface: Some(id),
                vpc: text(c, "vpcId"),
                subnets: text(c, "subnetId").into_iter().collect(),
                groups: ids_in(c, "groups", "groupId"),
                public_v4: c["association"]["publicIp"].as_str().map(str::to_owned),
                v6: list(c, "ipv6Addresses")
                    .filter_map(|x| {
                        text(x, "ipv6Address").or_else(|| x.as_str().map(str::to_owned))
                    })
                    .next(),
                in_use,
                stopped_reason: (!in_use).then(|| "is attached to nothing".to_owned()),
                listens: None,
            }]
        }
        "AWS::RDS::DBInstance" => {
            let public = c.get("publiclyAccessible").and_then(Value::as_bool) == Some(true);
            let mut listens = Ports::default();
            if let Some(port) = port_of(c["endpoint"].get("port"))
                .or_else(|| port_of(c.get("dbInstancePort")).filter(|p| *p > 0))
            {
                listens.add("tcp", port, port);
            }
            let status = text(c, "dBInstanceStatus").unwrap_or_else(|| "available".into());
            let stopped = matches!(status.as_str(), "stopped" | "stopping");
            vec![Attachment {
                owner: text(c, "dBInstanceIdentifier").unwrap_or_default(),
                interface: None,
                vpc: c["dBSubnetGroup"]["vpcId"].as_str().map(str::to_owned),
                subnets: ids_in(&c["dBSubnetGroup"], "subnets", "subnetIdentifier"),
                groups: ids_in(c, "vpcSecurityGroups", "vpcSecurityGroupId"),
                public_v4: public.then(|| "(publicly accessible endpoint)".to_owned()),
                v6: None,
                in_use: !stopped,
                stopped_reason: stopped.then(|| format!("is {status}")),
                listens: Some(listens),
            }]
        }
        "AWS::ElasticLoadBalancing::LoadBalancer" => {
            let mut listens = Ports::default();
            for l in list(c, "listenerDescriptions") {
                if let Some(p) = port_of(l["listener"].get("loadBalancerPort")) {
                    listens.add("tcp", p, p);
                }
            }
            let public = text(c, "scheme").as_deref() == Some("internet-facing");
            vec![Attachment {
                owner: text(c, "loadBalancerName").unwrap_or_default(),
                interface: None,
                vpc: text(c, "vpcid")
                    .or_else(|| text(c, "vPCId"))
                    .or_else(|| text(c, "vpcId")),
                subnets: ids_in(c, "subnets", "subnetId"),
                groups: ids_in(c, "securityGroups", "groupId"),
                public_v4: public.then(|| "(internet-facing scheme)".to_owned()),
                v6: None,
                in_use: true,
                stopped_reason: None,
                listens: Some(listens),
            }]
        }
        "AWS::ElasticLoadBalancingV2::LoadBalancer" => {
            let public = text(c, "scheme").as_deref() == Some("internet-facing");
            let dualstack = text(c, "ipAddressType").is_some_and(|t| t.starts_with("dualstack"));
            vec![Attachment {
                owner: text(c, "loadBalancerName").unwrap_or_default(),
                interface: None,
                vpc: text(c, "vpcId"),
                subnets: ids_in(c, "availabilityZones", "subnetId"),
                groups: ids_in(c, "securityGroups", "groupId"),
                public_v4: public.then(|| "(internet-facing scheme)".to_owned()),
                v6: (public && dualstack).then(|| "(dualstack)".to_owned()),
                in_use: true,
                stopped_reason: None,
                listens: None,
            }]
        }
        _ => Vec::new(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn item(t: &str, id: &str, configuration: Value) -> NetworkItem {
        NetworkItem {
            resource_type: t.into(),
            resource_id: id.into(),
            config: json!({ "configuration": configuration }),
        }
    }

    fn sg(id: &str, port: u32, cidr: &str) -> NetworkItem {
        item(
            "AWS::EC2::SecurityGroup",
            id,
            json!({"groupId": id, "ipPermissions": [{"ipProtocol": "tcp", "fromPort": port, "toPort": port, "ipv4Ranges": [{"cidrIp": cidr}]}]}),
        )
    }

    fn instance(id: &str, subnet: &str, public: Option<&str>, state: &str) -> NetworkItem {
        item(
            "AWS::EC2::Instance",
            id,
            json!({"instanceId": id, "vpcId": "vpc-1", "subnetId": subnet, "state": {"name": state},
                   "networkInterfaces": [{"networkInterfaceId": format!("eni-{id}"), "subnetId": subnet,
                     "groups": [{"groupId": "sg-ssh"}],
                     "association": public.map(|p| json!({"publicIp": p}))}]}),
        )
    }

    /// vpc-1 with a public subnet (own route table to igw-1) and a private one (the
    /// main table, local routes only); the default ACL allows everything.
    fn world(extra: Vec<NetworkItem>) -> Vec<NetworkItem> {
        let mut items = vec![
            item(
                "AWS::EC2::Subnet",
                "subnet-pub",
                json!({"subnetId": "subnet-pub", "vpcId": "vpc-1"}),
            ),
            item(
                "AWS::EC2::Subnet",
                "subnet-priv",
                json!({"subnetId": "subnet-priv", "vpcId": "vpc-1"}),
            ),
            item(
                "AWS::EC2::RouteTable",
                "rtb-pub",
                json!({"vpcId": "vpc-1",
                "routes": [{"destinationCidrBlock": "10.0.0.0/16", "gatewayId": "local"}, {"destinationCidrBlock": "0.0.0.0/0", "gatewayId": "igw-1", "state": "active"}],
                "associations": [{"subnetId": "subnet-pub", "main": false}]}),
            ),
            item(
                "AWS::EC2::RouteTable",
                "rtb-main",
                json!({"vpcId": "vpc-1",
                "routes": [{"destinationCidrBlock": "10.0.0.0/16", "gatewayId": "local"}],
                "associations": [{"main": true}]}),
            ),
            item(
                "AWS::EC2::InternetGateway",
                "igw-1",
                json!({"attachments": [{"vpcId": "vpc-1", "state": "available"}]}),
            ),
            item(
                "AWS::EC2::NetworkAcl",
                "acl-default",
                json!({"vpcId": "vpc-1", "isDefault": true, "entries": [
                {"ruleNumber": 100, "protocol": "-1", "ruleAction": "allow", "egress": false, "cidrBlock": "0.0.0.0/0"},
                {"ruleNumber": 32767, "protocol": "-1", "ruleAction": "deny", "egress": false, "cidrBlock": "0.0.0.0/0"},
                {"ruleNumber": 100, "protocol": "-1", "ruleAction": "allow", "egress": true, "cidrBlock": "0.0.0.0/0"},
                {"ruleNumber": 32767, "protocol": "-1", "ruleAction": "deny", "egress": true, "cidrBlock": "0.0.0.0/0"}]}),
            ),
            sg("sg-ssh", 22, "0.0.0.0/0"),
        ];
        items.extend(extra);
        items
    }

    fn exposure_of(items: Vec<NetworkItem>, id: &str) -> Exposure {
        let target = items
            .iter()
            .find(|i| i.resource_id == id)
            .cloned()
            .expect("item");
        Network::new(items)
            .exposure(&target.resource_type, id, &target.config)
            .expect("a fact")
    }

    #[test]
    fn a_public_instance_in_a_public_subnet_with_ssh_open_is_reachable_on_22() {
        let e = exposure_of(
            world(vec![instance(
                "i-1",
                "subnet-pub",
                Some("203.0.113.7"),
                "running",
            )]),
            "i-1",
        );
        assert!(e.reachable, "{e:?}");
        assert_eq!(e.ports_text(), "tcp 22");
        assert_eq!(e.gateway(), Some("igw-1"));
        let path = e.path.join(" | ");
        for hop in ["203.0.113.7", "rtb-pub", "igw-1", "acl-default", "sg-ssh"] {
            assert!(path.contains(hop), "{hop} in {path}");
        }
    }

    #[test]
    fn the_same_group_without_a_public_path_is_not_reachable() {
        let private = exposure_of(
            world(vec![instance(
                "i-2",
                "subnet-priv",
                Some("203.0.113.8"),
                "running",
            )]),
            "i-2",
        );
        assert!(!private.reachable);
        assert!(
            private.blocked.as_deref().unwrap().contains("rtb-main"),
            "{private:?}"
        );
        let no_ip = exposure_of(
            world(vec![instance("i-3", "subnet-pub", None, "running")]),
            "i-3",
        );
        assert!(!no_ip.reachable);
        assert!(no_ip.blocked.as_deref().unwrap().contains("no public IP"));
        let stopped = exposure_of(
            world(vec![instance(
                "i-4",
                "subnet-pub",
                Some("203.0.113.9"),
                "stopped",
            )]),
            "i-4",
        );
        assert!(!stopped.reachable && !stopped.in_use);
    }

    #[test]
    fn a_blackholed_route_or_a_detached_gateway_stops_the_path() {
        let mut items = world(vec![instance(
            "i-1",
            "subnet-pub",
            Some("203.0.113.7"),
            "running",
        )]);
        for i in &mut items {
            if i.resource_id == "igw-1" {
                i.config = json!({"configuration": {"attachments": []}});
            }
        }
        let e = exposure_of(items, "i-1");
        assert!(!e.reachable);
        assert!(e.blocked.unwrap().contains("not attached"));
        let mut items = world(vec![instance(
            "i-1",
            "subnet-pub",
            Some("203.0.113.7"),
            "running",
        )]);
        for i in &mut items {
            if i.resource_id == "rtb-pub" {
                i.config["configuration"]["routes"][1]["state"] = json!("blackhole");
            }
        }
        assert!(!exposure_of(items, "i-1").reachable);
    }

    #[test]
    fn network_acls_are_ordered_and_stateless() {
        let acl = |entries: Value| {
            item(
                "AWS::EC2::NetworkAcl",
                "acl-web",
                json!({"vpcId": "vpc-1", "entries": entries,
                "associations": [{"subnetId": "subnet-pub"}]}),
            )
        };
        let any = |n: i64, action: &str, egress: bool, proto: &str, from: u32, to: u32| json!({"ruleNumber": n, "protocol": proto, "ruleAction": action, "egress": egress, "cidrBlock": "0.0.0.0/0", "portRange": {"from": from, "to": to}});
        // A deny on 22 numbered before a wide allow wins.
        let e = exposure_of(
            world(vec![
                instance("i-1", "subnet-pub", Some("203.0.113.7"), "running"),
                acl(json!([
                    any(90, "deny", false, "6", 22, 22),
                    any(100, "allow", false, "-1", 0, 0),
                    any(100, "allow", true, "-1", 0, 0)
                ])),
            ]),
            "i-1",
        );
        assert!(!e.reachable, "{e:?}");
        assert!(e.blocked.unwrap().contains("acl-web"));
        // Allowed in, but no replies out to ephemeral ports: no session.
        let e = exposure_of(
            world(vec![
                instance("i-1", "subnet-pub", Some("203.0.113.7"), "running"),
                acl(json!([
                    any(100, "allow", false, "6", 22, 22),
                    any(100, "allow", true, "6", 443, 443)
                ])),
            ]),
            "i-1",
        );
        assert!(!e.reachable);
        assert!(e.blocked.unwrap().contains("replies"));
        // In on 22, replies out on 1024-65535: reachable.
        let e = exposure_of(
            world(vec![
                instance("i-1", "subnet-pub", Some("203.0.113.7"), "running"),
                acl(json!([
                    any(100, "allow", false, "6", 0, 1023),
                    any(100, "allow", true, "6", 1024, 65535)
                ])),
            ]),
            "i-1",
        );
        assert!(e.reachable);
        assert_eq!(e.ports_text(), "tcp 22");
    }

    #[test]
    fn a_group_is_judged_by_the_interfaces_that_use_it() {
        let items = world(vec![
            instance("i-1", "subnet-pub", Some("203.0.113.7"), "running"),
            sg("sg-unused", 3389, "0.0.0.0/0"),
        ]);
        let ssh = exposure_of(items.clone(), "sg-ssh");
        assert!(ssh.reachable && ssh.in_use);
        assert_eq!(ssh.used_by, vec!["i-1 (eni-i-1)"]);
        let unused = exposure_of(items, "sg-unused");
        assert!(!unused.reachable && !unused.in_use);
        assert!(unused
            .blocked
            .unwrap()
            .contains("attached to no network interface"));
        // Used only by a private instance: in use, not reachable.
        let private = exposure_of(
            world(vec![instance(
                "i-2",
                "subnet-priv",
                Some("203.0.113.8"),
                "running",
            )]),
            "sg-ssh",
        );
        assert!(private.in_use && !private.reachable);
    }

    #[test]
    fn ipv6_needs_its_own_route_and_rules() {
        let v6 = item(
            "AWS::EC2::Instance",
            "i-6",
            json!({"instanceId": "i-6", "vpcId": "vpc-1", "state": {"name": "running"},
                   "networkInterfaces": [{"networkInterfaceId": "eni-6", "subnetId": "subnet-pub",
                     "groups": [{"groupId": "sg-v6"}], "ipv6Addresses": [{"ipv6Address": "2001:db8::1"}]}]}),
        );
        let group = item(
            "AWS::EC2::SecurityGroup",
            "sg-v6",
            json!({"ipPermissions": [{"ipProtocol": "tcp", "fromPort": 443, "toPort": 443, "ipv6Ranges": [{"cidrIpv6": "::/0"}]}]}),
        );
        // The public route table has no ::/0 route.
        let e = exposure_of(world(vec![v6.clone(), group.clone()]), "i-6");
        assert!(!e.reachable, "{e:?}");
        let mut items = world(vec![v6, group]);
        for i in &mut items {
            match i.resource_id.as_str() {
                "rtb-pub" => i.config["configuration"]["routes"]
                    .as_array_mut()
                    .unwrap()
                    .push(json!({"destinationIpv6CidrBlock": "::/0", "gatewayId": "igw-1"})),
                "acl-default" => {
                    for dir in [false, true] {
                        i.config["configuration"]["entries"].as_array_mut().unwrap().push(
                            json!({"ruleNumber": 101, "protocol": "-1", "ruleAction": "allow", "egress": dir, "ipv6CidrBlock": "::/0"}),
                        );
                    }
                }
                _ => {}
            }
        }
        let e = exposure_of(items, "i-6");
        assert!(e.reachable, "{e:?}");
        assert_eq!(e.ports_text(), "tcp 443");
    }

    #[test]
    fn databases_and_load_balancers_follow_the_same_path() {
        let db_sg = item(
            "AWS::EC2::SecurityGroup",
            "sg-db",
            json!({"ipPermissions": [{"ipProtocol": "-1", "ipv4Ranges": [{"cidrIp": "0.0.0.0/0"}]}]}),
        );
        let db = |public: bool| {
            item(
                "AWS::RDS::DBInstance",
                "db-1",
                json!({"dBInstanceIdentifier": "db-1", "publiclyAccessible": public,
                "endpoint": {"port": 5432}, "vpcSecurityGroups": [{"vpcSecurityGroupId": "sg-db"}],
                "dBSubnetGroup": {"vpcId": "vpc-1", "subnets": [{"subnetIdentifier": "subnet-priv"}, {"subnetIdentifier": "subnet-pub"}]}}),
            )
        };
        let e = exposure_of(world(vec![db_sg.clone(), db(true)]), "db-1");
        assert!(e.reachable);
        assert_eq!(e.ports_text(), "tcp 5432", "only the port it listens on");
        assert!(!exposure_of(world(vec![db_sg, db(false)]), "db-1").reachable);
        let lb = item(
            "AWS::ElasticLoadBalancingV2::LoadBalancer",
            "web",
            json!({"loadBalancerName": "web",
            "loadBalancerArn": "arn:aws:elasticloadbalancing:us-east-1:1:loadbalancer/net/web/1", "scheme": "internet-facing",
            "vpcId": "vpc-1", "availabilityZones": [{"subnetId": "subnet-pub"}]}),
        );
        let listener = item(
            "AWS::ElasticLoadBalancingV2::Listener",
            "l-1",
            json!({"port": 443, "protocol": "TCP",
            "loadBalancerArn": "arn:aws:elasticloadbalancing:us-east-1:1:loadbalancer/net/web/1"}),
        );
        let e = exposure_of(world(vec![lb, listener]), "web");
        assert!(e.reachable, "{e:?}");
        assert_eq!(e.ports_text(), "tcp 443");
    }

    #[test]
    fn port_sets_merge_and_subtract() {
        assert_eq!(normalise(vec![(5, 9), (1, 3), (4, 4)]), vec![(1, 9)]);
        assert_eq!(
            subtract(&[(0, 100)], &[(10, 20), (50, 100)]),
            vec![(0, 9), (21, 49)]
        );
        assert_eq!(
            intersect(&[(0, 10), (20, 30)], &[(5, 25)]),
            vec![(5, 10), (20, 25)]
        );
    }
}
